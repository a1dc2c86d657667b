"""Runs a grid (or zipped list) of config overrides, one workdir per run, then compares them.

    python -m experiments.sweep --config=configs/eyes.py \
        --sweep=optimizer.name=adamw,sgd --sweep=optimizer.learning_rate=1e-4,1e-2 --zip
    python -m experiments.sweep ... --print_commands     # one command per run, for a job array

Runs go to --output (default runs/sweeps/<config stem>)/<field=value,...>; each trains with
`experiments.main` and is evaluated on the test split. Rerunning the same sweep skips the
finished runs and resumes a half-finished one from its checkpoint. At the end it writes
curves.png (validation loss and score of every run, overlaid) and results.md (one row per
run) in the sweep folder. --set=field=value (repeatable) applies to every run.
"""

from __future__ import annotations

import itertools
import os
import shlex
import subprocess
import sys

from absl import flags

from experiments import cli

flags.DEFINE_string('config', None, 'Path to a config file in configs/.')
flags.DEFINE_multi_string('sweep', [], 'field=v1,v2,...: a config field and its values; repeat for '
                          'more fields.')
flags.DEFINE_multi_string('set', [], 'field=value applied to every run.')
flags.DEFINE_bool('zip', False, 'Pair the i-th values of every --sweep instead of the full grid.')
flags.DEFINE_bool('print_commands', False, 'Print one shell command per run instead of running.')
flags.DEFINE_string('output', None, 'Sweep folder; default runs/sweeps/<config stem>.')
flags.mark_flags_as_required(['config'])
FLAGS = flags.FLAGS


def parse_axes(specs: list[str]) -> list[tuple[str, list[str]]]:
  axes = []
  for spec in specs:
    field, sep, values = spec.partition('=')
    values = [v.strip() for v in values.split(',') if v.strip()]
    if not sep or not field.strip() or not values:
      cli.fail(f'--sweep={spec!r}: write field=value1,value2 (e.g. --sweep=optimizer.learning_rate=1e-4,1e-2).')
    axes.append((field.strip(), values))
  if len({f for f, _ in axes}) != len(axes):
    cli.fail(f'--sweep names a field twice: {[f for f, _ in axes]}.')
  return axes


def runs(axes, zipped: bool) -> list[list[tuple[str, str]]]:
  """Each run's overrides, [(field, value), ...], in order."""
  fields, values = [f for f, _ in axes], [v for _, v in axes]
  if zipped and len({len(v) for v in values}) > 1:
    cli.fail(f'--zip needs the same number of values for every --sweep field; got '
             f'{ {f: len(v) for f, v in axes} }.')
  combos = zip(*values) if zipped and axes else itertools.product(*values)  # no axes: one run
  return [list(zip(fields, combo)) for combo in combos]


def run_name(overrides) -> str:
  name = ','.join(f'{field}={value}' for field, value in overrides) or 'base'
  return ''.join(c if c.isalnum() or c in '.,=-_' else '_' for c in name)


def commands(config: str, workdir: str, overrides, fixed) -> list[list[str]]:
  """Train (resuming if possible), then evaluate the best checkpoint on the test split."""
  args = [f'--config={config}', f'--workdir={workdir}'] + [f'--config.{f}={v}' for f, v in fixed + overrides]
  main = [sys.executable, '-m', 'experiments.main']
  return [main + args, main + args + ['--mode=eval']]


def finished(workdir: str) -> bool:
  from unet_flax.workdir import Workdir  # here, not at the top: --print_commands stays free of JAX
  return os.path.exists(Workdir(workdir).eval_file('test'))


def main(argv):
  if len(argv) > 1:
    cli.fail(f'unexpected arguments {argv[1:]}; config overrides go in --set=field=value.')
  if not os.path.isfile(FLAGS.config):
    cli.fail(f'--config={FLAGS.config} is not a file; choose one of configs/*.py.')
  axes = parse_axes(FLAGS.sweep)
  fixed = [tuple(s.split('=', 1)) for s in FLAGS.set]
  if any(len(f) != 2 for f in fixed):
    cli.fail(f'--set takes field=value; got {FLAGS.set}.')
  output = FLAGS.output or os.path.join('runs', 'sweeps', os.path.splitext(os.path.basename(FLAGS.config))[0])
  plan = [(run_name(o), o) for o in runs(axes, FLAGS.zip)]
  if FLAGS.print_commands:
    for name, overrides in plan:
      print(' && '.join(shlex.join(c) for c in commands(FLAGS.config, os.path.join(output, name), overrides, fixed)))
    return
  os.makedirs(output, exist_ok=True)
  for i, (name, overrides) in enumerate(plan, start=1):
    workdir = os.path.join(output, name)
    if finished(workdir):
      print(f'[{i}/{len(plan)}] {name}: finished, skipped', flush=True)
      continue
    print(f'[{i}/{len(plan)}] {name}', flush=True)
    for command in commands(FLAGS.config, workdir, overrides, fixed):
      done = subprocess.run(command)
      if done.returncode:
        cli.fail(f'run {name} stopped (exit code {done.returncode}); see its output above. Rerun the '
                 f'same sweep command to resume it.',
                 code=done.returncode if done.returncode > 0 else 128 - done.returncode)
  from unet_flax import plots, reports
  workdirs = [os.path.join(output, name) for name, _ in plan]
  curves = plots.compare_runs(workdirs, [name for name, _ in plan], os.path.join(output, 'curves.png'))
  table = reports.table(workdirs)
  with open(os.path.join(output, 'results.md'), 'w') as f:
    f.write(table)
  print(table)
  print(f'Wrote {curves} and {os.path.join(output, "results.md")}')


if __name__ == '__main__':
  cli.run(main)
