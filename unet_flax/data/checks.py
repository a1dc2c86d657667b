"""Checks every input file of a build before anything is written, and fingerprints the inputs.

`preflight` opens and decodes each image and mask once (images at reduced JPEG scale),
and reports every unreadable or truncated file and every mask whose shape does not
match its image in one `DatasetLayoutError` (up to `MAX_NAMES` names). Masks that are
entirely 0 or entirely 255 are counted in one warning. `fingerprint` identifies the
inputs (relative paths and sizes), so a data_dir built from other inputs is noticed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from unet_flax.errors import DatasetLayoutError

MAX_NAMES = 20
PROGRESS_SECONDS = 30.0
# What PIL raises for a file that is not a complete image of a format it knows.
UNREADABLE = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def is_hidden(name: str) -> bool:
  """Hidden files and macOS AppleDouble companions (`._name.jpg`) are never inputs."""
  return name.startswith('.')


def image_files(folder: str) -> list[str]:
  """Paths of the files in `folder` with an extension Pillow reads, sorted, hidden ones left out."""
  extensions = set(Image.registered_extensions())
  return [os.path.join(folder, n) for n in sorted(os.listdir(folder))
          if not is_hidden(n) and os.path.splitext(n)[1].lower() in extensions]


def _check_example(item, reduce_to: int, mask_shape: str):
  """(problems, all-0 masks, all-255 masks) for one (id, image path, mask paths)."""
  _, image_path, mask_paths = item
  problems, empty, full = [], 0, 0
  try:
    with Image.open(image_path) as img:
      image_size = img.size
      img.draft('RGB', (reduce_to, reduce_to))  # JPEG: decode at 1/2..1/8 scale, still every byte
      img.load()
  except UNREADABLE as e:
    return [f'{image_path}: unreadable or truncated image ({_reason(e)})'], 0, 0
  for mask_path in mask_paths:
    try:
      with Image.open(mask_path) as img:
        mask = np.asarray(img.convert('L'))
    except UNREADABLE as e:
      problems.append(f'{mask_path}: unreadable or truncated mask ({_reason(e)})')
      continue
    mask_size = mask.shape[::-1]
    same = mask_size == image_size if mask_shape == 'same' else (
        mask_size[0] * image_size[1] == mask_size[1] * image_size[0])
    if not same:
      problems.append(f'{mask_path}: mask is {mask_size[0]}x{mask_size[1]} but its image '
                      f'{os.path.basename(image_path)} is {image_size[0]}x{image_size[1]}')
    else:
      target = mask > (0 if mask.max(initial=0) <= 1 else 127)
      empty += not target.any()
      full += bool(target.all())
  return problems, empty, full


def _reason(e: Exception) -> str:
  return ' '.join(str(e).split())[:120] or e.__class__.__name__


def preflight(examples: Sequence[tuple[str, str, Sequence[str]]], *, what: str, image_size: int,
              mask_shape: str = 'same', threads: int = 8) -> None:
  """Decodes every (id, image path, mask paths); raises one DatasetLayoutError for all problems.

  mask_shape: 'same' (a mask has its image's size) or 'aspect' (the same aspect ratio,
  as CelebAMask-HQ's 512x512 masks of 1024x1024 images).
  """
  problems, empty, full = [], 0, 0
  start = last = time.time()
  with ThreadPoolExecutor(max(1, threads)) as pool:  # PIL decodes without the GIL
    for done, (found, e, f) in enumerate(
        pool.map(lambda x: _check_example(x, 2 * image_size, mask_shape), examples), 1):
      problems += found
      empty += e
      full += f
      if time.time() - last >= PROGRESS_SECONDS:  # a full CelebAMask-HQ check takes minutes
        last = time.time()
        print(f'{what}: checked {done} of {len(examples)} inputs ({last - start:.0f} s)', flush=True)
  if problems:
    shown = '; '.join(problems[:MAX_NAMES])
    more = f'; and {len(problems) - MAX_NAMES} more' if len(problems) > MAX_NAMES else ''
    raise DatasetLayoutError(
        f'{what}: {len(problems)} bad input file(s), nothing was written: {shown}{more}. '
        f'Replace or remove these files, then prepare again.')
  if empty or full:
    logging.warning('%s: %d mask(s) are entirely 0 (no target) and %d entirely 255 (all target); '
                    'check these are intended.', what, empty, full)


def fingerprint(root: str) -> str:
  """A hash of every non-hidden file's relative path and size under `root`."""
  digest = hashlib.sha256()
  for folder, dirs, files in os.walk(root):
    dirs[:] = sorted(d for d in dirs if not is_hidden(d))
    for name in sorted(f for f in files if not is_hidden(f)):
      path = os.path.join(folder, name)
      try:
        size = os.path.getsize(path)
      except OSError:
        size = -1  # dangling link: preflight names it
      digest.update(f'{os.path.relpath(path, root)}\0{size}\n'.encode())
  return digest.hexdigest()[:16]
