"""Compares experiments: one row per workdir in a Markdown table.

    python -m experiments.report runs/* [--output=results.md]

Reads each workdir's config.json, provenance.json, metrics.jsonl and eval_test.json
(run `python -m experiments.main --mode=eval` first for the test columns).
"""

import json
import os

from absl import flags, logging

from experiments import cli
from unet_flax import workdir as workdir_lib

flags.DEFINE_string('output', 'results.md', 'Markdown file to write.')
FLAGS = flags.FLAGS

COLUMNS = ('workdir', 'config', 'target', 'steps', 'wall time', 'devices', 'test BCE/CE', 'accuracy',
           'Dice', 'IoU', 'mean F1')


def _load(path, default=None):
  if not os.path.exists(path):
    return default
  try:
    with open(path) as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    logging.warning('%s is not valid JSON (%s); its columns are left empty.', path, e)
    return default


def row(workdir: str) -> dict | None:
  config = _load(os.path.join(workdir, 'config.json'))
  if config is None:
    return None
  provenance = (_load(os.path.join(workdir, 'provenance.json')) or [{}])[-1]
  metrics = workdir_lib.read_metrics(workdir)
  summaries = [m for m in metrics if m['split'] == 'summary']
  test = _load(os.path.join(workdir, 'eval_test.json'), {})
  fmt = lambda key: f'{test[key]:.4f}' if key in test else '-'
  devices = provenance.get('devices', [])
  return {
      'workdir': os.path.basename(os.path.normpath(workdir)),
      'config': provenance.get('command', '').split('--config=')[-1].split()[0] if '--config=' in provenance.get('command', '') else '-',
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


def main(argv):
  workdirs = argv[1:]
  if not workdirs:
    cli.fail('usage: python -m experiments.report runs/* [--output=results.md]')
  missing = [w for w in workdirs if not os.path.isdir(w)]
  if missing:
    cli.fail(f'not a workdir (no such folder): {", ".join(missing)}')
  text = table(workdirs)
  with open(FLAGS.output, 'w') as f:
    f.write(text)
  print(text)
  print(f'Wrote {FLAGS.output}')


if __name__ == '__main__':
  cli.run(main)
