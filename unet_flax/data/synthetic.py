"""The synthetic faces written in the CelebAMask-HQ layout (the `synthetic` dataset configs).

`write_tree` draws faces with `unet_flax.data.render` (each a pure function of (seed, index))
on all cores and writes each as CelebAMask-HQ ships its data: a JPEG image at a random
quality and one PNG mask per part present. The files written are read back by exactly the
CelebAMask-HQ reader.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image

from unet_flax.data.celebamask_hq import ANNO_DIR, IMG_DIR, MAPPING_FILE, TEST_START, VALIDATION_START
from unet_flax.data.render import GLASSES_FRACTION, render_face

__all__ = ['GLASSES_FRACTION', 'render_face', 'write_tree']


def _orig_number(index: int, sizes: dict[str, int]) -> int:
  """CelebA file number for a synthetic face, so CelebA's partition puts it in its split."""
  if index < sizes['train']:
    return 1 + index
  if index < sizes['train'] + sizes['validation']:
    return VALIDATION_START + index - sizes['train']
  return TEST_START + index - sizes['train'] - sizes['validation']


def _write_one(args):
  root, seed, index, size = args
  img, masks = render_face(seed, index, size)
  rng = np.random.default_rng([seed, index, 1])
  buf = io.BytesIO()
  Image.fromarray(img).save(buf, format='JPEG', quality=int(rng.integers(35, 96)))
  with open(os.path.join(root, IMG_DIR, f'{index}.jpg'), 'wb') as f:
    f.write(buf.getvalue())
  folder = os.path.join(root, ANNO_DIR, str(index // 2000))
  for name, m in masks.items():
    Image.fromarray((m * 255).astype(np.uint8)).save(os.path.join(folder, f'{index:05d}_{name}.png'))


def _die_with_parent(parent_pid: int) -> None:
  """Worker set-up: Ctrl-C is the parent's to handle, and a worker exits when its parent dies
  (even by SIGKILL), instead of drawing on for nobody."""
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  with contextlib.suppress(OSError, AttributeError):  # Linux: the kernel sends SIGKILL when the parent exits
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

  def watch():  # elsewhere, or if the parent died before prctl: poll
    while os.getppid() == parent_pid:
      time.sleep(1.0)
    os._exit(1)

  threading.Thread(target=watch, daemon=True).start()


def write_tree(root: str, *, seed: int, sizes: dict[str, int], size: int = 512,
               workers: int | None = None) -> None:
  """Writes a CelebAMask-HQ-layout tree of synthetic faces under `root`, drawn at `size` pixels
  (the dataset's own size: drawing at 512 for a 256 dataset costs four times the time)."""
  total = sum(sizes.values())
  os.makedirs(os.path.join(root, IMG_DIR), exist_ok=True)
  for folder in range(total // 2000 + 1):
    os.makedirs(os.path.join(root, ANNO_DIR, str(folder)), exist_ok=True)
  jobs = [(root, seed, i, size) for i in range(total)]
  workers = workers or os.cpu_count() or 1
  if workers > 1 and total > 16:
    # spawn, not fork: the caller may already run JAX threads, which fork can deadlock.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context('spawn'),
                               initializer=_die_with_parent, initargs=(os.getpid(),))
    try:
      list(pool.map(_write_one, jobs, chunksize=8))
    finally:  # on Ctrl-C or an error, drop the queued work instead of finishing it
      pool.shutdown(wait=False, cancel_futures=True)
  else:
    for job in jobs:
      _write_one(job)
  rows = [f'{i} {i} {_orig_number(i, sizes):06d}.jpg' for i in range(total)]
  with open(os.path.join(root, MAPPING_FILE), 'w') as f:
    f.write('idx\torig_idx\torig_file\n' + '\n'.join(rows) + '\n')
