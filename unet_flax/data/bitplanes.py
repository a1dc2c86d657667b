"""Overlapping 0/1 part masks stored as zlib-compressed bit-planes.

A (S, S, P) 0/1 array is packed along the part axis (np.packbits: channel c is
bit 7 - c % 8 of byte c // 8), so 18 parts take 3 bytes per pixel instead of 18.
Each byte-plane is its own zlib stream (after a header of uint32 stream lengths),
so a binary target reads only the planes holding its parts: eyeglasses, eyes and
their neighbours are all in plane 0. The input pipeline builds training targets
straight from the packed planes (`TargetMaker.from_planes`), never unpacking.

`BitPackedMasks` is the TFDS feature: users of the dataset still see `parts`
as uint8 (S, S, P).
"""

from __future__ import annotations

import zlib

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core.utils.lazy_imports_utils import tensorflow as tf


def num_bytes(num_parts: int) -> int:
  return (num_parts + 7) // 8


def bit_of(channel: int) -> tuple[int, int]:
  """(byte index, bit mask) of a part channel in the packed planes."""
  return channel // 8, 1 << (7 - channel % 8)


def pack(parts: np.ndarray) -> bytes:
  packed = np.packbits(parts, axis=-1)
  streams = [zlib.compress(np.ascontiguousarray(packed[..., b]).tobytes()) for b in range(packed.shape[-1])]
  return np.array([len(z) for z in streams], '<u4').tobytes() + b''.join(streams)


def planes(data: bytes, size: int, num_parts: int, needed=None) -> np.ndarray:
  """Serialized bytes -> packed planes, uint8 (num_bytes, size, size), plane-major so each
  plane is contiguous. Only the planes in `needed` (default: all) are inflated; the
  others stay zero."""
  count = num_bytes(num_parts)
  lengths = np.frombuffer(data, '<u4', count)
  out = np.zeros((count, size, size), np.uint8)
  start = 4 * count
  for b, length in enumerate(lengths.tolist()):
    if needed is None or b in needed:
      out[b] = np.frombuffer(zlib.decompress(data[start:start + length]), np.uint8).reshape(size, size)
    start += length
  return out


def unpack(packed: np.ndarray, num_parts: int) -> np.ndarray:
  """Plane-major packed planes -> (size, size, num_parts) 0/1 uint8."""
  return np.unpackbits(np.moveaxis(packed, 0, -1), axis=-1, count=num_parts)


class BitPackedMasks(tfds.features.Tensor):
  """uint8 (S, S, P) 0/1 masks, serialized as zlib-compressed bit-planes."""

  def __init__(self, *, shape, doc=None):
    super().__init__(shape=shape, dtype=np.uint8, encoding='zlib', doc=doc)

  def encode_example(self, example_data):
    parts = np.asarray(example_data)
    if parts.shape != tuple(self.shape):
      raise ValueError(f'parts shape {parts.shape} != {tuple(self.shape)}')
    if parts.dtype != np.uint8 or parts.max(initial=0) > 1:
      raise ValueError('parts must be uint8 with values 0/1')
    return pack(parts)

  def decode_example_np(self, example_data):
    size, _, num_parts = self.shape
    if isinstance(example_data, np.ndarray):  # a 0-d object array from tf.numpy_function
      example_data = example_data.item()
    return unpack(planes(bytes(example_data), size, num_parts), num_parts)

  def decode_example(self, tfexample_data):
    """TensorFlow path (`as_dataset`): the NumPy decoder inside the graph."""
    parts = tf.numpy_function(lambda b: self.decode_example_np(b), [tfexample_data], tf.uint8,
                              stateful=False)
    parts.set_shape(self.shape)
    return parts
