"""Finds or prepares the `face_segmentation` dataset a config names (no TensorFlow needed)."""

from __future__ import annotations

import json
import logging
import os

import tensorflow_datasets as tfds

from unet_flax.data import checks
from unet_flax.data.face_segmentation import Builder, FaceSegmentationConfig
from unet_flax.data.celebamask_hq import DatasetLayoutError


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
        synthetic_seed=seed, synthetic_sizes=sizes,
        description=f'Procedurally drawn faces, seed {seed}, {sizes}, {builder_config.image_size}px.')
  return Builder(config=builder_config, data_dir=os.path.expanduser(dataset_cfg.data_dir))


def prepare_once(dataset_cfg) -> Builder:
  """`prepare` on process 0 while the other processes wait, then the builder on every process:
  hosts that share storage never build the same files at once."""
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
  """
  data_dir = os.path.expanduser(dataset_cfg.data_dir)
  parent = next((p for p in _ancestors(data_dir) if os.path.lexists(p)), None)
  if parent is not None and not os.path.isdir(parent):
    raise DatasetLayoutError(f'config.dataset.data_dir={dataset_cfg.data_dir}: {parent} is a file, not a '
                             f'folder; point data_dir at a folder (it is created if missing).')
  builder = make_builder(dataset_cfg)
  manual_dir = dataset_cfg.get('manual_dir') or None
  prepared = is_prepared(builder)
  if builder.builder_config.source != 'synthetic' and not manual_dir and not prepared:
    raise DatasetLayoutError(
        f'face_segmentation/{builder.builder_config.name} is not prepared in {builder.data_dir} and '
        f'needs the downloaded data: set --config.dataset.manual_dir=/path/to/it.')
  if manual_dir:
    manual_dir = os.path.abspath(os.path.expanduser(manual_dir))
    if not os.path.isdir(manual_dir):
      raise DatasetLayoutError(f'config.dataset.manual_dir={manual_dir!r} is not a folder.')
  if manual_dir and prepared and builder.builder_config.source != 'synthetic':
    _check_same_source(builder, manual_dir)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  if manual_dir and not prepared and builder.builder_config.source != 'synthetic':
    with open(os.path.join(builder.data_dir, SOURCE_FILE), 'w') as f:
      json.dump({'manual_dir': manual_dir, 'fingerprint': checks.fingerprint(manual_dir)}, f, indent=2)
  return builder


def _ancestors(path: str):
  path = os.path.abspath(path)
  while True:
    yield path
    if os.path.dirname(path) == path:
      return
    path = os.path.dirname(path)


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


SOURCE_FILE = 'unet_flax_source.json'  # beside dataset_info.json: what the build was made from


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
