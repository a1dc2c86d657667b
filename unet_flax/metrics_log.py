"""What a training reports as it goes: metrics rows (metrics.jsonl and TensorBoard), their tolerant
reader, and progress lines with steps/s and ETA.

Where the files are is the run folder's business (`workdir.Workdir` names them); this module
only writes and reads them. Only process 0 writes or prints.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import time

import jax


def read(path: str) -> list[dict]:
  """metrics.jsonl rows in step order; a torn or corrupt line (a run killed mid-write) is skipped
  with a warning naming the file and line. Rows a killed run wrote after its last checkpoint
  are written again by the resumed run: the later row of a (split, step) wins."""
  if not os.path.exists(path):
    return []
  rows = []
  with open(path) as f:
    for line_no, line in enumerate(f, start=1):
      if not line.strip():
        continue
      try:
        row = json.loads(line)
      except json.JSONDecodeError:
        row = None
      if not isinstance(row, dict) or 'step' not in row or 'split' not in row:
        logging.warning('%s:%d is not a complete metrics row (a run stopped while writing it?); '
                        'skipped.', path, line_no)
        continue
      rows.append(row)
  latest = {(r['split'], r['step']): i for i, r in enumerate(rows)}
  return [rows[i] for i in sorted(latest.values(), key=lambda i: (rows[i]['step'], i))]


class MetricWriter(contextlib.AbstractContextManager):
  """metrics.jsonl and TensorBoard event files (process 0 only).

  TensorBoard events are written with tensorboardX, which needs no TensorFlow (CLU's own
  TensorBoard writer imports TensorFlow).
  """

  def __init__(self, path: str, tensorboard_dir: str):
    self._active = jax.process_index() == 0
    self._path = path
    self._tb = None
    if self._active:
      os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
      _end_torn_line(self._path)
      from tensorboardX import SummaryWriter
      self._tb = SummaryWriter(tensorboard_dir, flush_secs=30)

  def write(self, step: int, split: str, scalars: dict) -> None:
    if not self._active:
      return
    print(f'[{split}] step {step}: ' + ', '.join(
        f'{k}={v:.4f}' for k, v in scalars.items() if '/' not in k), flush=True)
    with open(self._path, 'a') as f:
      f.write(json.dumps({'step': step, 'split': split, **scalars}) + '\n')
    for name, value in scalars.items():
      if value is not None and self._tb is not None:
        self._tb.add_scalar(f'{split}/{name}', float(value), step)

  def write_images(self, step: int, images: dict) -> None:
    """images: name -> uint8 [N, H, W, 3]."""
    if self._tb is not None:
      for name, batch in images.items():
        self._tb.add_images(name, batch, step, dataformats='NHWC')

  def close(self):
    if self._tb is not None:
      self._tb.close()
      self._tb = None

  def __exit__(self, *exc):
    self.close()


def _end_torn_line(path: str) -> None:
  """A run killed mid-write can leave a last line without its newline: end it, so the next
  row starts on a line of its own (readers skip the torn one)."""
  if os.path.exists(path) and os.path.getsize(path):
    with open(path, 'rb+') as f:
      f.seek(-1, os.SEEK_END)
      if f.read(1) != b'\n':
        f.write(b'\n')


class Progress:
  """Prints steps/s and ETA every ~30 s and at the last step (process 0 only)."""

  def __init__(self, total_steps: int, start_step: int = 0, every_seconds=30.0):
    self.total, self.every = total_steps, every_seconds
    self._t0 = self._last = time.time()
    self._step0 = start_step

  def __call__(self, step: int) -> None:
    now = time.time()
    if now - self._last < self.every and step != self.total:
      return
    self._last = now
    rate = (step - self._step0) / max(now - self._t0, 1e-9)
    eta = (self.total - step) / rate if rate else float('inf')
    if jax.process_index() == 0:
      print(f'step {step}/{self.total}  {rate:.2f} steps/s  ETA {datetime.timedelta(seconds=int(eta))}',
            flush=True)
