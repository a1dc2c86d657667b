"""Overlapping 0/1 part masks stored as zlib-compressed bit-planes.

A (S, S, P) 0/1 array is packed along the part axis (np.packbits: channel c is
bit 7 - c % 8 of byte c // 8), so 18 parts take 3 bytes per pixel instead of 18.
Each byte-plane is its own zlib stream (after a header of uint32 stream lengths),
so a binary target reads only the planes holding its parts: eyeglasses, eyes and
their neighbours are all in plane 0. The input pipeline builds training targets
straight from the packed planes (`TargetMaker.from_planes`), never unpacking.

This module is numpy only. The TFDS feature that stores masks this way,
`BitPackedMasks`, lives with the dataset builder; users of the dataset still see
`parts` as uint8 (S, S, P).
"""

from __future__ import annotations

import zlib

import numpy as np


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
