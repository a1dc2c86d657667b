"""Reads the folder-layout eyeglasses dataset (seed 000's): one binary `eye_g` mask per image.

    <root>/{train,val,test}/images/<stem>.{jpg,jpeg,png}
    <root>/{train,val,test}/masks/<stem>.{png,jpg}

Pairs are matched by file stem; two files with one stem in a folder (a.jpg and a.png)
are an error, and hidden files (.DS_Store, macOS `._a.jpg`) are ignored. JPEG-compressed
masks (values other than 0/1/255) are thresholded at 128, with one warning giving the count.
"""

from __future__ import annotations

import logging
import os

from unet_flax.data import checks
from unet_flax.data.io import load_mask, load_rgb, ordered_parallel_map
from unet_flax.errors import DatasetLayoutError

SPLIT_DIRS = {'train': 'train', 'validation': 'val', 'test': 'test'}
IMAGE_EXTS = ('.jpg', '.jpeg', '.png')
MASK_EXTS = ('.png', '.jpg')


def _by_stem(folder: str, exts: tuple[str, ...]) -> dict[str, str]:
  found: dict[str, list[str]] = {}
  for name in sorted(os.listdir(folder)):
    stem, ext = os.path.splitext(name)
    if ext.lower() in exts and not checks.is_hidden(name):
      found.setdefault(stem, []).append(name)
  clashes = {stem: names for stem, names in found.items() if len(names) > 1}
  if clashes:
    shown = '; '.join(' and '.join(names) for names in list(clashes.values())[:checks.MAX_NAMES])
    raise DatasetLayoutError(
        f'folder dataset: {len(clashes)} stem(s) in {folder} belong to more than one file, so the '
        f'pairing is ambiguous: {shown}. Keep one file per stem.')
  return {stem: os.path.join(folder, names[0]) for stem, names in found.items()}


def list_pairs(root: str, split: str) -> list[tuple[str, str, str]]:
  """(stem, image path, mask path) for a split, sorted by stem."""
  split_dir = os.path.join(root, SPLIT_DIRS[split])
  for sub in ('images', 'masks'):
    if not os.path.isdir(os.path.join(split_dir, sub)):
      raise DatasetLayoutError(
          f'folder dataset: {os.path.join(split_dir, sub)} not found. The manual dir must hold '
          f'train/, val/ and test/, each with images/ and masks/ (pairs matched by file stem).')
  images = _by_stem(os.path.join(split_dir, 'images'), IMAGE_EXTS)
  masks = _by_stem(os.path.join(split_dir, 'masks'), MASK_EXTS)
  unpaired = sorted(set(images) ^ set(masks))
  if unpaired:
    raise DatasetLayoutError(
        f'folder dataset: {len(unpaired)} unpaired file(s) in {split_dir} (an image without a '
        f'mask of the same stem, or the reverse), e.g. {unpaired[:10]}. Add the missing files '
        f'or remove these.')
  if not images:
    raise DatasetLayoutError(f'folder dataset: no images (.jpg/.jpeg/.png) in {split_dir}/images.')
  return [(stem, images[stem], masks[stem]) for stem in sorted(images)]


def iter_examples(pairs: list[tuple[str, str, str]], split: str, size: int, threads: int):
  """(key, example) for the pairs from `list_pairs`; warns once about JPEG-compressed masks."""
  odd_pixels = odd_masks = 0

  def load(pair):
    stem, image_path, mask_path = pair
    mask, odd = load_mask(mask_path, size)
    return {'image': load_rgb(image_path, size), 'parts': mask[..., None], 'id': stem, '_odd': odd}

  for key, example in ordered_parallel_map(load, pairs, threads):
    odd = example.pop('_odd')
    odd_masks += bool(odd)
    odd_pixels += odd
    yield key, example
  if odd_masks:
    logging.warning('folder dataset, %s split: %d mask(s) (%d pixels) had values other than '
                    '0/1/255 (JPEG-compressed masks); they were thresholded at 128.',
                    split, odd_masks, odd_pixels)
