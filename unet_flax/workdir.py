"""What a workdir records: resolved config, provenance, metrics.jsonl, TensorBoard, progress.

Only process 0 writes.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata

import jax

PACKAGES = ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'clu', 'grain', 'tensorflow-datasets', 'tensorboardX',
            'ml-collections', 'numpy', 'pillow')


def _git(*args) -> str | None:
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  try:
    return subprocess.run(['git', '-C', repo, *args], capture_output=True, text=True, check=True,
                          timeout=10).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return None


def provenance(builder=None) -> dict:
  versions = {}
  for name in PACKAGES:
    try:
      versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      versions[name] = None
  status = _git('status', '--porcelain', '--untracked-files=no')
  info = {
      'time': datetime.datetime.now(datetime.timezone.utc).isoformat(),
      'command': ' '.join(sys.argv),
      'git_commit': _git('rev-parse', 'HEAD'),
      'git_dirty': None if status is None else bool(status),
      'python': platform.python_version(),
      'packages': versions,
      'process_count': jax.process_count(),
      'devices': [str(d) for d in jax.devices()],
      'device_kind': jax.devices()[0].device_kind,
  }
  if builder is not None:
    info['dataset'] = {'name': builder.info.name, 'config': builder.builder_config.name,
                       'version': str(builder.info.version), 'data_dir': str(builder.data_dir),
                       'splits': {k: v.num_examples for k, v in builder.info.splits.items()}}
  return info


def record_start(workdir: str, config, builder) -> None:
  """Writes config.json and appends to provenance.json (one entry per start, resumes included)."""
  if jax.process_index() != 0:
    return
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True))
  path = os.path.join(workdir, 'provenance.json')
  history = json.load(open(path)) if os.path.exists(path) else []
  history.append(provenance(builder))
  with open(path, 'w') as f:
    json.dump(history, f, indent=2)


class MetricWriter:
  """metrics.jsonl and TensorBoard event files (process 0 only).

  TensorBoard events are written with tensorboardX, which needs no TensorFlow. It has
  the methods of CLU's `MetricWriter` interface that training uses (write_scalars,
  write_images, flush, close); CLU's own TensorBoard writer imports TensorFlow.
  """

  def __init__(self, workdir: str):
    self._active = jax.process_index() == 0
    self._path = os.path.join(workdir, 'metrics.jsonl')
    self._tb = None
    if self._active:
      os.makedirs(workdir, exist_ok=True)
      from tensorboardX import SummaryWriter
      self._tb = SummaryWriter(os.path.join(workdir, 'tensorboard'), flush_secs=30)

  def write(self, step: int, split: str, scalars: dict) -> None:
    if not self._active:
      return
    print(f'[{split}] step {step}: ' + ', '.join(
        f'{k}={v:.4f}' for k, v in scalars.items() if '/' not in k), flush=True)
    with open(self._path, 'a') as f:
      f.write(json.dumps({'step': step, 'split': split, **scalars}) + '\n')
    self.write_scalars(step, {f'{split}/{k}': v for k, v in scalars.items() if v is not None})

  def write_scalars(self, step: int, scalars: dict) -> None:
    if self._tb is not None:
      for name, value in scalars.items():
        self._tb.add_scalar(name, float(value), step)

  def write_images(self, step: int, images: dict) -> None:
    """images: name -> uint8 [N, H, W, 3]."""
    if self._tb is not None:
      for name, batch in images.items():
        self._tb.add_images(name, batch, step, dataformats='NHWC')

  def flush(self):
    if self._tb is not None:
      self._tb.flush()

  def close(self):
    if self._tb is not None:
      self._tb.close()


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
