"""Scaling runs: `experiments.benchmark` over device counts, as a table and a plot.

    python -m experiments.scaling --config=configs/base.py --devices=1,2,4,8 --mode=weak
    python -m experiments.scaling --config=configs/bench_cpu.py --devices=1,2,4 --mode=strong

weak    every device keeps config.batch_size examples: the global batch grows with devices.
strong  the global batch stays config.batch_size, split over the devices.

Each count runs the benchmark in its own process: on GPU hosts with the first N GPUs
visible (CUDA_VISIBLE_DEVICES), on CPU hosts with N forced host devices sharing the
machine's cores (which proves the mechanics, not hardware scaling). Efficiency is
images/s at N devices over N times images/s at one. Written to --output (default
runs/scaling/<config>_<mode>): scaling.md, scaling.png and the raw results.json.
"""

import json
import os
import subprocess
import sys

from absl import flags
from ml_collections import config_flags

from experiments import cli
from unet_flax.errors import UserError

config_flags.DEFINE_config_file('config', None, 'Path to a config file in configs/.', lock_config=True)
flags.DEFINE_list('devices', ['1', '2', '4', '8'], 'Device counts to run.')
flags.DEFINE_enum('mode', 'weak', ['weak', 'strong'], 'weak: fixed per-device batch; strong: fixed global batch.')
flags.DEFINE_integer('steps', 10, 'Timed steps per round of the benchmark.')
flags.DEFINE_integer('rounds', 2, 'Benchmark rounds per device count.')
flags.DEFINE_string('output', None, 'Folder for scaling.md, scaling.png and results.json.')
flags.mark_flags_as_required(['config'])
flags.register_validator('devices', lambda counts: all(c.isdigit() and int(c) > 0 for c in counts),
                         '--devices takes a comma-separated list of device counts, e.g. 1,2,4,8')
FLAGS = flags.FLAGS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_benchmark(config_path: str, overrides: list[str], devices: int, batch_size: int, platform: str) -> dict:
  env = dict(os.environ)
  if platform == 'gpu':
    env['CUDA_VISIBLE_DEVICES'] = ','.join(str(i) for i in range(devices))
  else:
    flags_ = [f for f in env.get('XLA_FLAGS', '').split() if 'xla_force_host_platform_device_count' not in f]
    env['XLA_FLAGS'] = ' '.join(flags_ + [f'--xla_force_host_platform_device_count={devices}'])
  cmd = [sys.executable, '-m', 'experiments.benchmark', f'--config={config_path}', *overrides,
         f'--config.batch_size={batch_size}', '--peer=off', f'--steps={FLAGS.steps}', f'--rounds={FLAGS.rounds}']
  done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
  error_lines = [l for l in done.stderr.splitlines() if l.startswith('error: ')]
  if done.returncode == cli.USER_ERROR_EXIT and error_lines:  # a mistake in the flags it passes on: one line
    raise UserError(f'the benchmark at {devices} devices: {error_lines[-1][len("error: "):]}')
  if done.returncode != 0:
    raise RuntimeError(f'{" ".join(cmd)} failed:\n{done.stderr[-3000:]}')
  return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict], mode: str) -> str:
  lines = [f'| devices | global batch | images/s | ms/step | speed-up | efficiency ({mode}) |',
           '|---|---|---|---|---|---|']
  base = rows[0]['images_per_s'] / rows[0]['devices']
  for r in rows:
    speedup = r['images_per_s'] / base
    lines.append(f"| {r['devices']} | {r['batch_size']} | {r['images_per_s']:.1f} | {r['step_ms']:.1f} | "
                 f"{speedup:.2f}x | {100 * speedup / r['devices']:.0f}% |")
  return '\n'.join(lines)


def plot(rows: list[dict], mode: str, title: str, path: str) -> None:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  n = [r['devices'] for r in rows]
  ips = [r['images_per_s'] for r in rows]
  base = ips[0] / n[0]
  fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
  left.plot(n, ips, 'o-', label='measured')
  left.plot(n, [base * d for d in n], '--', color='grey', label='linear')
  left.set(xlabel='devices', ylabel='images/s', title=f'{title}: throughput ({mode})')
  left.legend()
  right.plot(n, [100 * i / (base * d) for i, d in zip(ips, n)], 'o-')
  right.set(xlabel='devices', ylabel='efficiency %', ylim=(0, 110), title='scaling efficiency')
  for ax in (left, right):
    ax.set_xticks(n)
    ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main(argv):
  del argv
  config_path = config_flags.get_config_filename(FLAGS['config'])
  config = FLAGS.config
  counts = sorted(int(d) for d in FLAGS.devices)
  if FLAGS.mode == 'strong':
    bad = [d for d in counts if config.batch_size % d]
    if bad:
      raise UserError(f'--mode=strong: config.batch_size={config.batch_size} does not split over {bad} devices.')
  # The config's own overrides (--config.X=...) are passed on to every benchmark run.
  overrides = [a for a in sys.argv[1:] if a.startswith('--config.') and not a.startswith('--config.batch_size')]
  import jax
  platform = jax.default_backend()
  rows = []
  for d in counts:
    batch = config.batch_size * d if FLAGS.mode == 'weak' else config.batch_size
    rows.append(run_benchmark(config_path, overrides, d, batch, platform))
    print(f"{d} devices: {rows[-1]['images_per_s']:.1f} images/s ({rows[-1]['step_ms']:.1f} ms/step)", flush=True)
  stem = os.path.splitext(os.path.basename(config_path))[0]
  out = FLAGS.output or os.path.join('runs', 'scaling', f'{stem}_{FLAGS.mode}')
  os.makedirs(out, exist_ok=True)
  text = (f"# Scaling: {stem}, {FLAGS.mode}, {rows[0]['device_kind']} ({platform})\n\n"
          f'`python -m experiments.scaling {" ".join(sys.argv[1:])}`\n\n{table(rows, FLAGS.mode)}\n')
  if platform == 'cpu':
    text += ('\nCPU: the devices are forced host devices sharing this machine\'s cores, so this shows '
             'the mechanics, not hardware scaling.\n')
  with open(os.path.join(out, 'scaling.md'), 'w') as f:
    f.write(text)
  with open(os.path.join(out, 'results.json'), 'w') as f:
    json.dump(rows, f, indent=2)
  plot(rows, FLAGS.mode, stem, os.path.join(out, 'scaling.png'))
  print(text)
  print(f'Wrote {out}/scaling.md, scaling.png, results.json')


if __name__ == '__main__':
  cli.run(main)
