"""Trains or evaluates a config: `python -m experiments.main --config=configs/base.py`.

  --workdir     defaults to runs/<config file stem>; a rerun resumes from its checkpoints
  --mode=eval   restores --checkpoint (best | latest | STEP) and evaluates --split,
                writing eval_<split>.json in the workdir
"""

import json
import os
import sys

from absl import flags
from ml_collections import config_flags

from experiments import cli

config_flags.DEFINE_config_file('config', None, 'Path to a config file in configs/.', lock_config=True)
flags.DEFINE_string('workdir', None, 'Where checkpoints, metrics and plots go; default runs/<config stem>.')
flags.DEFINE_enum('mode', 'train', ['train', 'eval'], 'Train (resuming if possible) or evaluate.')
flags.DEFINE_string('checkpoint', 'best', 'For --mode=eval: best, latest or a step number.')
flags.DEFINE_enum('split', 'test', ['train', 'validation', 'test'], 'For --mode=eval: the split.')
flags.DEFINE_string('coordinator_address', None, 'Multi-host: host:port of process 0; with '
                    '--num_processes and --process_id this calls jax.distributed.initialize. Under '
                    'SLURM or Open MPI (or with UNET_FLAX_NUM_PROCESSES set for a Kubernetes Indexed '
                    'Job) JAX finds these itself.')
flags.DEFINE_integer('num_processes', None, 'Multi-host: number of processes.')
flags.DEFINE_integer('process_id', None, 'Multi-host: this process (0 .. num_processes - 1).')
flags.mark_flags_as_required(['config'])
FLAGS = flags.FLAGS



def _cluster_processes() -> int:
  """Processes in the job when run under SLURM, Open MPI or a Kubernetes Indexed Job (else 1)."""
  found = [os.environ[v] for v in ('SLURM_NTASKS', 'OMPI_COMM_WORLD_SIZE', 'UNET_FLAX_NUM_PROCESSES')
           if os.environ.get(v, '').isdigit()]
  return int(found[0]) if found else 1


def _start_processes(config) -> None:
  """Compilation cache, CPU devices, and JAX's distributed runtime when there are several hosts."""
  from unet_flax import runtime
  processes = FLAGS.num_processes or _cluster_processes()
  runtime.configure((config.batch_size, config.eval_batch_size), processes)
  import jax
  if processes > 1:  # timeouts: runtime.distributed_timeout, docs/multihost.md
    if FLAGS.coordinator_address:
      runtime.start_distributed(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
    else:  # SLURM / Open MPI / Kubernetes: JAX reads the coordinator and ranks from the environment
      runtime.start_distributed()
  print(f'process {jax.process_index()} of {jax.process_count()}: {jax.local_device_count()} local devices '
        f'{[str(d) for d in jax.local_devices()]}', file=sys.stderr, flush=True)


def main(argv):
  del argv
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  _start_processes(FLAGS.config)
  from unet_flax import plots, train  # after flag parsing: keeps --help fast
  from unet_flax.workdir import Workdir

  config = FLAGS.config
  run = Workdir(FLAGS.workdir or os.path.join('runs', os.path.splitext(os.path.basename(
      config_flags.get_config_filename(FLAGS['config'])))[0]))
  if FLAGS.mode == 'train':
    train.train_and_evaluate(config, run)
    plots.write_all(run, config)
  else:
    result = train.evaluate_checkpoint(config, run, FLAGS.checkpoint, FLAGS.split)
    print(json.dumps(result, indent=2), flush=True)  # first: a workdir we cannot write still shows them
    print(f'Wrote {run.write_eval(FLAGS.split, result)}')
    if 'mean_f1' in result:  # face parsing: the per-class table beside it
      from unet_flax import metrics
      table = metrics.per_class_markdown(result, f'{config.target}, {FLAGS.split} split, step {result["step"]} '
                                                 f'({FLAGS.checkpoint} checkpoint)')
      print(f'Wrote {run.write_eval_classes(FLAGS.split, table)}')


if __name__ == '__main__':
  cli.run(main)
