"""Where the train step's time goes: a per-op table from a `jax.profiler` trace.

    XLA_FLAGS=--xla_cpu_enable_xprof_traceme=true \
        python -m experiments.profile_step --config=configs/bench_cpu.py

Compiles the step as `experiments.benchmark` does, traces --steps steps and sums the
trace's events by op (HLO instruction names with their numeric suffix dropped) over all
threads, per step. On CPU, --xla_cpu_enable_xprof_traceme=true is what makes XLA emit one
event per op; the table also gives thread time against wall time, which shows how many
cores the step keeps busy. The trace itself stays in --trace_dir for TensorBoard's profiler.
"""

import collections
import re
import statistics

from absl import flags
from ml_collections import config_flags

from experiments import cli

config_flags.DEFINE_config_file('config', None, 'Path to a config file in configs/.', lock_config=True)
flags.DEFINE_integer('steps', 5, 'Traced steps.')
flags.DEFINE_integer('input_size', 0, 'Side of the batches fed to the step; 0 = the model input size.')
flags.DEFINE_integer('top', 25, 'Rows in the table.')
flags.DEFINE_string('trace_dir', '/tmp/unet_flax_profile', 'Where the trace is written.')
flags.mark_flags_as_required(['config'])
FLAGS = flags.FLAGS

# Runtime bookkeeping rather than ops: left out of the per-op table.
_NOT_OPS = ('ThunkExecutor::', 'end: ')


def op_table(xspace_path: str, steps: int) -> tuple[list[tuple[str, float, int]], float]:
  """[(op, ms per step, calls per step)] by time, and the total thread ms per step."""
  from jax.profiler import ProfileData
  time_ns, calls = collections.Counter(), collections.Counter()
  for plane in ProfileData.from_file(xspace_path).planes:
    for line in plane.lines:
      if line.name == 'python' or 'PjRtCpuClient' in line.name:
        continue  # the host's Python and the dispatcher waiting on the ops
      for event in line.events:
        if event.name.startswith(_NOT_OPS):
          continue
        op = re.sub(r'\.\d+$', '', event.name)
        time_ns[op] += event.duration_ns
        calls[op] += 1
  rows = [(op, ns / steps / 1e6, calls[op] // steps) for op, ns in time_ns.most_common()]
  return rows, sum(time_ns.values()) / steps / 1e6


def main(argv):
  del argv
  import glob
  import os
  import shutil

  from unet_flax.speed import compile_step
  ours = compile_step(FLAGS.config, FLAGS.input_size)
  import jax

  ours.time_steps(3)
  shutil.rmtree(FLAGS.trace_dir, ignore_errors=True)
  with jax.profiler.trace(FLAGS.trace_dir):
    wall = ours.time_steps(FLAGS.steps)
  path = glob.glob(os.path.join(FLAGS.trace_dir, '**', '*.xplane.pb'), recursive=True)[0]
  rows, thread_ms = op_table(path, FLAGS.steps)
  wall_ms = 1e3 * statistics.median(wall)
  print(f'{jax.local_device_count()} x {jax.local_devices()[0].device_kind}: {wall_ms:.1f} ms wall per step, '
        f'{thread_ms:.1f} ms of op time per step over all threads ({thread_ms / wall_ms:.2f} threads busy)')
  print(f"{'ms/step':>9} {'share':>6} {'calls':>6}  op")
  for op, ms, n in rows[:FLAGS.top]:
    print(f'{ms:9.2f} {100 * ms / thread_ms:5.1f}% {n:6d}  {op}')
  print(f'trace: {path}')


if __name__ == '__main__':
  cli.run(main)
