"""Finds or prepares the `face_segmentation` dataset a config names (no TensorFlow needed)."""

from __future__ import annotations

import errno
import json
import logging
import os
import pathlib
import shutil

import tensorflow_datasets as tfds

from unet_flax import locks
from unet_flax.data import checks
from unet_flax.data.face_segmentation import SOURCE_FILE, Builder, FaceSegmentationConfig
from unet_flax.errors import DatasetLayoutError


def make_builder(dataset_cfg) -> Builder:
  """The builder for `config.dataset` (fields: config, data_dir, and synthetic_sizes/seed)."""
  name = dataset_cfg.config
  known = {c.name: c for c in Builder.BUILDER_CONFIGS}
  if name not in known:
    raise DatasetLayoutError(
        f'config.dataset.config={name!r} is not a face_segmentation config; use one of {sorted(known)}.')
  builder_config = known[name]
  sizes = dict(dataset_cfg.get('synthetic_sizes') or {})
  seed = dataset_cfg.get('synthetic_seed', 0)
  if builder_config.source == 'synthetic' and (sizes and sizes != builder_config.synthetic_sizes or seed):
    # A non-default synthetic set gets its own config name, so it never overwrites another.
    sizes = sizes or dict(builder_config.synthetic_sizes)
    suffix = '_'.join(str(sizes[s]) for s in ('train', 'validation', 'test'))
    builder_config = FaceSegmentationConfig(
        name=f'{name}_seed{seed}_{suffix}', source='synthetic', image_size=builder_config.image_size,
        synthetic_seed=seed, synthetic_sizes=sizes, version=builder_config.version,
        description=f'Procedurally drawn faces, seed {seed}, {sizes}, {builder_config.image_size}px.')
  return Builder(config=builder_config, data_dir=os.path.expanduser(dataset_cfg.data_dir))


def prepare_once(dataset_cfg) -> Builder:
  """`prepare` on process 0 while the other processes wait, then the builder on every process:
  hosts that share storage never build the same files at once. Process 0 takes the same lock as
  any other preparer, so other jobs preparing that data_dir are waited for too."""
  import jax
  if jax.process_count() == 1:
    return prepare(dataset_cfg)
  from unet_flax import runtime
  builder = prepare(dataset_cfg) if jax.process_index() == 0 else None
  # Not a collective: preparing can take minutes, and this waits the distributed timeout.
  runtime.barrier('face_segmentation prepared')
  if builder is None:
    builder = make_builder(dataset_cfg)
    if not is_prepared(builder):
      raise DatasetLayoutError(
          f'process {jax.process_index()} cannot see the dataset that process 0 prepared in '
          f'{builder.data_dir}: put config.dataset.data_dir on storage every host reads.')
  return builder


def prepare(dataset_cfg) -> Builder:
  """Builds the dataset if it is not there yet, and returns its builder.

  A build from a manual dir records that dir and a fingerprint of its files; preparing
  the same data_dir from inputs that differ is refused rather than silently reusing
  the old build.

  Any number of processes, on any hosts, may prepare one data_dir at once: builds are
  serialised by `<data_dir>/face_segmentation/prepare.lock` (a `locks.FileLock`; what it relies
  on and where it does not hold is said there). A second preparer says once whom it waits for,
  then reuses the finished build. A build is renamed into place whole by TFDS, so a holder that
  died leaves only an unfinished folder, which the next holder removes; and where the lock did
  not hold, the build that loses the rename reuses the one that won.
  """
  data_dir = os.path.expanduser(dataset_cfg.data_dir)
  path = pathlib.Path(os.path.abspath(data_dir))
  parent = next((p for p in (path, *path.parents) if os.path.lexists(p)), None)
  if parent is not None and not os.path.isdir(parent):
    raise DatasetLayoutError(f'config.dataset.data_dir={dataset_cfg.data_dir}: {parent} is a file, not a '
                             f'folder; point data_dir at a folder (it is created if missing).')
  builder = make_builder(dataset_cfg)
  manual_dir = dataset_cfg.get('manual_dir') or None
  needs_download = builder.builder_config.source != 'synthetic'
  if needs_download and not manual_dir and not is_prepared(builder):
    raise DatasetLayoutError(
        f'face_segmentation/{builder.builder_config.name} is not prepared in {builder.data_dir} and '
        f'needs the downloaded data: set --config.dataset.manual_dir=/path/to/it.')
  if manual_dir:
    manual_dir = os.path.abspath(os.path.expanduser(manual_dir))
    if not os.path.isdir(manual_dir):
      raise DatasetLayoutError(f'config.dataset.manual_dir={manual_dir!r} is not a folder.')
  built = False
  if not is_prepared(builder):
    lock = locks.FileLock(os.path.join(data_dir, 'face_segmentation', LOCK_FILE), heartbeat=True)
    lock.acquire(wait=True, on_wait=lambda holder: logging.warning(
        'face_segmentation/%s in %s is being prepared by another process (%s); waiting for it '
        '(lock %s).', builder.builder_config.name, data_dir, locks.describe(holder), lock.path))
    with lock:
      built = not is_prepared(builder) and _build(builder, manual_dir)
    if not built:  # another process built it: read its dataset_info afresh
      builder = make_builder(dataset_cfg)
  if manual_dir and needs_download and not built:
    _check_same_source(builder, manual_dir)
  return builder


LOCK_FILE = 'prepare.lock'  # in <data_dir>/face_segmentation/: held while a build runs


def _build(builder, manual_dir: str | None) -> bool:
  """Builds while holding the lock; False if another build finished first after all."""
  config_dir = os.path.dirname(builder.data_dir)
  for name in sorted(os.listdir(config_dir)) if os.path.isdir(config_dir) else []:
    # TFDS's unfinished folder of a build that died: nobody else builds while we hold the lock.
    if name.startswith('incomplete.') and name.endswith(f'_{builder.info.version}'):
      path = os.path.join(config_dir, name)
      logging.warning('Removing %s, left by a build that did not finish.', path)
      shutil.rmtree(path)
  print(f'Preparing face_segmentation/{builder.builder_config.name} in {builder.data_dir_root}',
        flush=True)
  try:
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  except OSError as e:  # TFDS could not rename its build into place: another one is there
    if not (isinstance(e, FileExistsError) or e.errno in (errno.EEXIST, errno.ENOTEMPTY)) \
        or not is_prepared(builder):
      raise
    logging.warning('%s was finished by another process while this one built it too (the lock '
                    '%s did not hold on this filesystem); using that build.', builder.data_dir,
                    LOCK_FILE)
    return False
  return True


def _check_same_source(builder, manual_dir: str) -> None:
  recorded = read_source(builder)
  if not recorded:
    logging.warning('%s was built before inputs were recorded; cannot tell whether %s holds the '
                    'same files. Delete that folder to rebuild from them.', builder.data_dir, manual_dir)
    return
  if recorded['fingerprint'] != checks.fingerprint(manual_dir):
    raise DatasetLayoutError(
        f'{builder.data_dir} already holds face_segmentation/{builder.builder_config.name} built from '
        f'{recorded["manual_dir"]}, and the files in config.dataset.manual_dir={manual_dir} differ. '
        f'To build from them use another --config.dataset.data_dir, or delete {builder.data_dir} '
        f'to rebuild there.')



def read_source(builder) -> dict:
  """{'manual_dir', 'fingerprint'} recorded by the build, or {} (synthetic, or older builds)."""
  path = os.path.join(builder.data_dir, SOURCE_FILE)
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)


def identity(builder) -> dict:
  """What makes two builds the same dataset, for a workdir to record and compare."""
  return {'name': builder.info.name, 'config': builder.builder_config.name,
          'version': str(builder.info.version), 'data_dir': str(builder.data_dir),
          'splits': {k: v.num_examples for k, v in sorted(builder.info.splits.items())},
          'fingerprint': read_source(builder).get('fingerprint')}


def is_prepared(builder) -> bool:
  return os.path.exists(os.path.join(builder.data_dir, 'dataset_info.json'))
