"""Reads an unzipped CelebAMask-HQ download (also the layout the synthetic set is written in).

    <root>/CelebA-HQ-img/<idx>.jpg                                  1024x1024 images
    <root>/CelebAMask-HQ-mask-anno/<idx // 2000>/<idx:05d>_<part>.png 512x512 masks, 0/255
    <root>/CelebA-HQ-to-CelebA-mapping.txt                          idx orig_idx orig_file

A missing mask file means the part is absent in that image. Splits follow
CelebA's official partition of the original file number.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from unet_flax.data import parts as parts_lib
from unet_flax.data.io import load_mask, load_rgb, ordered_parallel_map
from unet_flax.errors import DatasetLayoutError

IMG_DIR = 'CelebA-HQ-img'
ANNO_DIR = 'CelebAMask-HQ-mask-anno'
MAPPING_FILE = 'CelebA-HQ-to-CelebA-mapping.txt'
VALIDATION_START = 162771  # CelebA's list_eval_partition: 1..162770 train
TEST_START = 182638  # 162771..182637 validation, 182638.. test
SPLITS = ('train', 'validation', 'test')


def split_of(orig_number: int) -> str:
  if orig_number < VALIDATION_START:
    return 'train'
  return 'validation' if orig_number < TEST_START else 'test'


def _require(path: str, what: str) -> None:
  if not os.path.exists(path):
    raise DatasetLayoutError(
        f'CelebAMask-HQ: {what} not found at {path}. Point --manual_dir '
        f'(config.dataset.manual_dir) at the unzipped CelebAMask-HQ folder, the one '
        f'holding {IMG_DIR}/, {ANNO_DIR}/ and {MAPPING_FILE}.')


def read_split_indices(root: str) -> dict[str, list[int]]:
  """CelebA-HQ indices per split, from the mapping file."""
  mapping = os.path.join(root, MAPPING_FILE)
  _require(mapping, 'the mapping file')
  _require(os.path.join(root, ANNO_DIR), 'the mask folder')
  _require(os.path.join(root, IMG_DIR), 'the image folder')
  splits: dict[str, list[int]] = {s: [] for s in SPLITS}
  first_line: dict[int, int] = {}
  duplicates = []
  with open(mapping) as f:
    lines = f.read().splitlines()
  for line_no, line in enumerate(lines[1:], start=2):
    fields = line.split()
    if not fields:
      continue
    try:
      idx, orig = int(fields[0]), int(os.path.splitext(fields[2])[0])
    except (IndexError, ValueError):
      raise DatasetLayoutError(
          f'{mapping}:{line_no}: expected "idx orig_idx orig_file" (e.g. "0 119613 119614.jpg"), '
          f'got {line!r}.') from None
    if idx in first_line:
      duplicates.append(f'idx {idx} on lines {first_line[idx]} and {line_no}')
      continue
    first_line[idx] = line_no
    splits[split_of(orig)].append(idx)
  if duplicates:
    raise DatasetLayoutError(
        f'{mapping}: {len(duplicates)} duplicated idx row(s): {"; ".join(duplicates[:20])}. Each '
        f'CelebA-HQ index must appear once; restore the file from the download.')
  missing = [i for s in SPLITS for i in splits[s]
             if not os.path.exists(os.path.join(root, IMG_DIR, f'{i}.jpg'))]
  if missing:
    raise DatasetLayoutError(
        f'CelebAMask-HQ: {len(missing)} image(s) listed in {mapping} are missing, e.g. '
        f'{os.path.join(root, IMG_DIR, f"{missing[0]}.jpg")}. Re-extract CelebA-HQ-img/ '
        f'from the download.')
  return splits


def _part_masks(root: str, idx: int) -> list[tuple[int, str]]:
  """(channel, path) of the part masks that exist for one index (a missing one: part absent)."""
  folder = os.path.join(root, ANNO_DIR, str(idx // 2000))
  paths = [(c, os.path.join(folder, f'{idx:05d}_{name}.png'))
           for c, name in enumerate(parts_lib.CELEBAMASK_HQ_PARTS)]
  return [(c, p) for c, p in paths if os.path.lexists(p)]  # lexists: a broken link is reported


def example_files(root: str, idx: int) -> tuple[str, str, list[str]]:
  """(id, image path, mask paths) for one index."""
  return str(idx), os.path.join(root, IMG_DIR, f'{idx}.jpg'), [p for _, p in _part_masks(root, idx)]


def load_example(root: str, idx: int, size: int) -> dict:
  parts = np.zeros((size, size, len(parts_lib.CELEBAMASK_HQ_PARTS)), np.uint8)
  for channel, path in _part_masks(root, idx):
    parts[..., channel] = load_mask(path, size)[0]
  return {'image': load_rgb(os.path.join(root, IMG_DIR, f'{idx}.jpg'), size), 'parts': parts,
          'id': str(idx)}


def iter_examples(root: str, indices: list[int], size: int, threads: int) -> Iterator[tuple[str, dict]]:
  """(key, example) in index order; decoding runs on `threads` threads (PIL releases the GIL)."""
  yield from ordered_parallel_map(lambda i: load_example(root, i, size), indices, threads)
