"""Results tables: one Markdown row per workdir (config, target, steps, wall time, devices,
test metrics), read from the files a workdir records."""

from __future__ import annotations

import os

from unet_flax.workdir import Workdir

COLUMNS = ('workdir', 'config', 'target', 'steps', 'wall time', 'devices', 'test BCE/CE', 'accuracy',
           'Dice', 'IoU', 'mean F1')


def row(workdir: str | os.PathLike) -> dict | None:
  # A report shows what is there: a broken file leaves its columns empty (with a warning).
  run = Workdir(workdir)
  config = run.read_config(strict=False)
  if config is None:
    return None
  provenance = (run.read_provenance(strict=False) or [{}])[-1]
  metrics = run.read_metrics()
  summaries = [m for m in metrics if m['split'] == 'summary']
  test = run.read_eval('test', strict=False) or {}
  fmt = lambda key: f'{test[key]:.4f}' if key in test else '-'
  devices = provenance.get('devices', [])
  command = provenance.get('command', '')
  return {
      'workdir': os.path.basename(os.path.normpath(workdir)),
      'config': command.split('--config=')[-1].split()[0] if '--config=' in command else '-',
      'target': config.get('target', '-'),
      'steps': str(max((m['step'] for m in metrics), default=0)),
      # The last summary's wall time covers every earlier start (it survives resumes).
      'wall time': f"{summaries[-1]['wall_seconds'] / 60:.1f} min" if summaries else '-',
      'devices': f"{len(devices)} x {provenance.get('device_kind', '?')}" if devices else '-',
      'test BCE/CE': fmt('bce') if 'bce' in test else fmt('cross_entropy'),
      'accuracy': fmt('accuracy'), 'Dice': fmt('dice'), 'IoU': fmt('iou') if 'iou' in test else fmt('mean_iou'),
      'mean F1': fmt('mean_f1'),
  }


def table(workdirs) -> str:
  rows = [r for r in (row(w) for w in workdirs) if r]
  lines = ['| ' + ' | '.join(COLUMNS) + ' |', '|' + '---|' * len(COLUMNS)]
  lines += ['| ' + ' | '.join(r[c] for c in COLUMNS) + ' |' for r in rows]
  return '\n'.join(lines) + '\n'
