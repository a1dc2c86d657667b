"""Deterministic Grain input pipeline over `tfds.data_source` for training and evaluation.

Host work is kept to reading, decoding and building the target label; the
geometric and colour augmentations run on the device inside the jitted train
step (`unet_flax.augment`), which keeps the host far ahead of an H100.

Batches are dicts of numpy arrays with leading axes [local_devices, per_device]:
  image  float32 [D, B, H, W, 3] in [0, 1]
  label  uint8   [D, B, H, W]    0/1 for a binary target, class id for face parsing
  valid  bool    [D, B]          False for padding in the last evaluation batch
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator

import grain
import jax
import numpy as np
import tensorflow_datasets as tfds

from unet_flax import augment, runtime
from unet_flax.data import bitplanes
from unet_flax.data import parts as parts_lib
from unet_flax.errors import ConfigError, UserError


@dataclasses.dataclass(frozen=True)
class Split:
  """A split's records (with `parts` left as packed bytes) and how to decode them."""
  source: object  # random-access: tfds data source with parts undecoded
  part_names: tuple[str, ...]
  size: int

  def __len__(self):
    return len(self.source)

  def planes(self, record, needed=None) -> np.ndarray:
    return bitplanes.planes(bytes(record['parts']), self.size, len(self.part_names), needed)

  def examples(self, target_maker, indices) -> tuple[np.ndarray, np.ndarray]:
    """Float images [N, S, S, 3] in [0, 1] and labels [N, S, S] for a few records."""
    records = [self.source[i] for i in indices]
    return (np.stack([np.asarray(r['image'], np.float32) / 255 for r in records]),
            np.stack([target_maker.from_planes(self.planes(r, target_maker.needed_planes))
                      for r in records]))


def open_split(builder, split: str) -> Split:
  """The `split` of a prepared `face_segmentation` builder as a random-access source."""
  if split not in builder.info.splits:
    raise UserError(f'split {split!r} is not in {builder.info.full_name}; it has '
                     f'{sorted(builder.info.splits)}.')
  # Parts stay packed: targets are built from the bit-planes (`TargetMaker.from_planes`).
  source = builder.as_data_source(split=split, decoders={'parts': tfds.decode.SkipDecoding()})
  part_names = tuple(builder.info.metadata['part_names'])
  return Split(source=source, part_names=part_names, size=builder.builder_config.image_size)


class _ToExample(grain.transforms.Map):
  """A TFDS record -> {'image': uint8 HxWx3, 'label': uint8 HxW}."""

  def __init__(self, split: Split, target_maker: parts_lib.TargetMaker):
    self._split, self._target = split, target_maker

  def map(self, record):
    return {'image': np.asarray(record['image']),
            'label': self._target.from_planes(self._split.planes(record, self._target.needed_planes))}


def _stack(examples, local_devices: int, batch_size: int, valid=None) -> dict:
  image = np.multiply(np.stack([e['image'] for e in examples]), np.float32(1 / 255), dtype=np.float32)
  label = np.stack([e['label'] for e in examples])
  valid = np.ones(len(examples), bool) if valid is None else valid
  shape = (local_devices, batch_size // local_devices)
  return {'image': image.reshape(shape + image.shape[1:]),
          'label': label.reshape(shape + label.shape[1:]),
          'valid': valid.reshape(shape)}


def _host_batch_size(global_batch_size: int, field: str = 'batch_size') -> int:
  hosts = jax.process_count()
  runtime.check_batch_divisible(field, global_batch_size, jax.device_count(), hosts)
  return global_batch_size // hosts


def _read_options(threads: int) -> grain.ReadOptions:
  return grain.ReadOptions(num_threads=threads, prefetch_buffer_size=4 * threads)


def train_iterator(split: Split, target_maker: parts_lib.TargetMaker, *, global_batch_size: int,
                   seed: int, threads: int = 8) -> grain.DatasetIterator:
  """Endless, shuffled (reshuffled every epoch) batches: this host's slice of each global batch.

  The sequence of global batches depends only on the seed, not on the number of hosts:
  all hosts shuffle the whole split the same way, and host h reads examples
  [h * host_batch, (h + 1) * host_batch) of every global batch, which its devices split in
  order. The iterator supports `get_state()`/`set_state()` for exact resumption.
  """
  host_batch = _host_batch_size(global_batch_size)
  if len(split) < global_batch_size:
    raise ConfigError(f'the training split has {len(split)} examples, fewer than one batch '
                     f'({global_batch_size}); lower config.batch_size.')
  examples = grain.MapDataset.source(split.source).shuffle(seed=seed).repeat(None)
  first = jax.process_index() * host_batch

  def global_index(i):  # i-th example this host reads -> its index in the global sequence
    batch, j = divmod(i, host_batch)
    return batch * global_batch_size + first + j

  devices = jax.local_device_count()
  ds = (grain.MapDataset.range(len(examples) // global_batch_size * host_batch)
        .map(lambda i: examples[global_index(i)]).map(_ToExample(split, target_maker))
        .batch(host_batch, drop_remainder=True,
               batch_fn=lambda batch: _stack(batch, devices, host_batch)))
  return iter(ds.to_iter_dataset(_read_options(threads)))


def eval_num_batches(split: Split, global_batch_size: int) -> int:
  """Batches per host so that every host runs the same number of (pmapped) steps."""
  per_host = math.ceil(len(split) / jax.process_count())
  return math.ceil(per_host / _host_batch_size(global_batch_size, 'eval_batch_size'))


def eval_iterator(split: Split, target_maker: parts_lib.TargetMaker, *, global_batch_size: int,
                  threads: int = 8) -> Iterator[dict]:
  """Every example of the split exactly once across hosts; padding is marked `valid=False`."""
  host_batch = _host_batch_size(global_batch_size, 'eval_batch_size')
  devices = jax.local_device_count()
  ds = grain.MapDataset.source(split.source)[jax.process_index()::jax.process_count()]
  examples = iter(ds.map(_ToExample(split, target_maker)).to_iter_dataset(_read_options(threads)))
  blank = {'image': np.zeros((split.size, split.size, 3), np.uint8),
           'label': np.zeros((split.size, split.size), np.uint8)}
  for _ in range(eval_num_batches(split, global_batch_size)):
    chunk = [e for _, e in zip(range(host_batch), examples)]
    valid = np.arange(host_batch) < len(chunk)
    yield _stack(chunk + [blank] * (host_batch - len(chunk)), devices, host_batch, valid)


def examples_at_model_size(split, target_maker, count: int, image_size: int):
  """The first `count` examples of a split as (float images, labels) resized to the model input."""
  images, labels = split.examples(target_maker, range(min(count, len(split))))
  return tuple(np.asarray(a) for a in augment.resize(images, labels, image_size))
