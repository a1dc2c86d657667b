"""`experiments.main` as 2 processes x 2 CPU devices (gloo on 127.0.0.1) equals 1 process x 4
devices; every process takes part in its checkpoint saves and in the restore behind the
end-of-training pictures.

One two-process run only: on CPU its programs (with gloo collectives) are compiled afresh on
every start, about 35 s on 2 cores, so a second run to test the resume would double the
cost. Resuming is exact in one process (test_train) and the input sequence does not depend
on the host count (test_data), which together cover a multi-process resume.

Process 1 starts its first step 40 s after process 0, as a host that finishes compiling later
would: folded into the same run, it costs about that much wall time, no CPU."""

import json
import os
import socket
import subprocess
import sys

import jax
import pytest

from configs import test as test_config
from tests.helpers import difference_per_update
from unet_flax import checkpoints, runtime, train
from unet_flax.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# SGD: Adam's first steps move parameters by about lr * sign(gradient), which turns float
# rounding in near-zero gradients into lr-sized differences (see test_train).
OVERRIDES = ['--config=configs/test.py', '--config.loss.name=bce_dice', '--config.model.norm=batch',
             '--config.model.dropout=0.1', '--config.optimizer.name=sgd', '--config.optimizer.learning_rate=0.05',
             '--config.eval_every_steps=2', '--config.checkpoint_every_steps=2', '--config.log_every_steps=2']


# Longer than the 30 s gloo allows a first collective to connect the hosts: without
# runtime.connect_collectives the run stops with "GetKeyValue() timed out".
LATE_SECONDS = 40
# experiments.main, with process 1's first train step LATE_SECONDS late (a test-only hook).
_LATE_HOST_MAIN = """
import runpy, sys, time
sys.path.insert(0, {repo!r})
from tests.helpers import pmap_steps_with_hook
from unet_flax import steps

def hook(n):
  if n == 1 and '--process_id=1' in sys.argv:
    print('process 1: first step {late} s late', file=sys.stderr, flush=True)
    time.sleep({late})

steps.pmap_steps = pmap_steps_with_hook(hook)  # before experiments.main imports train
runpy.run_module('experiments.main', run_name='__main__', alter_sys=True)
"""


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _main(data_dir, workdir, steps, processes):
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  env['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={4 // processes}'
  main = ['-m', 'experiments.main']
  if processes > 1:
    main = ['-c', _LATE_HOST_MAIN.format(repo=REPO, late=LATE_SECONDS)]
  args = [sys.executable, *main, *OVERRIDES, f'--config.dataset.data_dir={data_dir}',
          f'--workdir={workdir}', f'--config.num_train_steps={steps}']
  if processes > 1:
    port = _free_port()
    args += [f'--coordinator_address=127.0.0.1:{port}', f'--num_processes={processes}']
  procs = [subprocess.Popen(args + ([f'--process_id={i}'] if processes > 1 else []), cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(processes)]
  for i, proc in enumerate(procs):
    out, err = proc.communicate(timeout=900)  # a hang guard, not a time limit
    assert proc.returncode == 0, err[-3000:]
    assert f'process {i} of {processes}: {4 // processes} local devices' in err
    assert (f'first step {LATE_SECONDS} s late' in err) == (processes > 1 and i == 1)
  return [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]


def _experiment(data_dir):
  cfg = test_config.get_config()
  cfg.dataset.data_dir = str(data_dir)
  cfg.model.norm, cfg.model.dropout, cfg.optimizer.name = 'batch', 0.1, 'sgd'
  return train.Experiment(cfg)


def _restore(workdir, data_dir):
  exp = _experiment(data_dir)
  return checkpoints.Manager(str(workdir), exp.config, read_only=True).restore(
      exp.initial_state(), 'latest')[0]


def _scores(rows, split):
  return [(r['step'], r['loss'], r['dice']) for r in rows if r['split'] == split]


def _one_process_four_devices(data_dir, workdir):
  """The reference, in this process (conftest gives it 4 CPU devices), with the same config."""
  cfg = test_config.get_config()
  for override in OVERRIDES[1:] + [f'--config.dataset.data_dir={data_dir}', '--config.num_train_steps=4']:
    field, value = override[len('--config.'):].split('=', 1)
    node = cfg
    *path, leaf = field.split('.')
    for p in path:
      node = node[p]
    node[leaf] = type(node[leaf])(value)
  train.train_and_evaluate(cfg, str(workdir))
  return [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]


def test_two_hosts_equal_one_host(tmp_path, synthetic_data_dir, synthetic_builder):
  assert jax.device_count() == 4
  one = _one_process_four_devices(synthetic_data_dir, tmp_path / 'one')
  two = _main(synthetic_data_dir, tmp_path / 'two', 4, processes=2)
  assert sorted(os.listdir(tmp_path / 'two' / 'checkpoints')) == ['2', '4']
  assert (tmp_path / 'two' / 'sample_predictions.png').exists()  # after a restore on both processes
  # Written by process 0 only: each step once.
  assert [(r['step'], r['split']) for r in two if r['split'] != 'summary'] == [
      (2, 'train'), (2, 'validation'), (4, 'train'), (4, 'validation')]
  for split in ('train', 'validation'):
    for (s1, loss1, dice1), (s2, loss2, dice2) in zip(_scores(one, split), _scores(two, split)):
      assert s1 == s2 and loss2 == pytest.approx(loss1, rel=1e-4) and dice2 == pytest.approx(dice1, rel=1e-4, abs=1e-6)
  a, b = (_restore(tmp_path / name, synthetic_data_dir) for name in ('one', 'two'))
  assert int(a.step) == int(b.step) == 4
  start = _experiment(synthetic_data_dir).initial_state()
  # Float32 rounding differs between 1 x 4 and 2 x 2 devices, and the 4 steps amplify it (batch
  # norm): measured against the update (docs/benchmarks.md, "Multi-host and device-count
  # bounds"), it moved the parameters by 1e-4 to 4.6e-3 and the batch statistics by up to
  # 1.6e-4 as XLA's flags or the device count changed the rounding; in float64, by 2e-15. A real
  # difference (process 1 drawing its own keys, per-device batch norm, one key for every
  # device) moved them by 0.13 and 0.022 or more. The bounds sit between, by the geometric mean.
  params_apart = difference_per_update(b.params, a.params, start.params)
  batch_stats_apart = difference_per_update(b.batch_stats, a.batch_stats, start.batch_stats)
  assert params_apart < 2e-2 and batch_stats_apart < 2e-3, (params_apart, batch_stats_apart)


def test_hosts_wait_for_each_other_as_long_as_the_environment_says(monkeypatch):
  """One wait for every place the hosts meet (docs/multihost.md, "Timeouts"); the collectives'
  share of it reaches XLA through XLA_FLAGS, unless XLA_FLAGS already sets it."""
  monkeypatch.delenv(runtime.TIMEOUT_ENV, raising=False)
  assert runtime.distributed_timeout() == 15 * 60
  monkeypatch.setenv(runtime.TIMEOUT_ENV, '3600')
  assert runtime.distributed_timeout() == 3600
  monkeypatch.setenv('XLA_FLAGS', '--xla_force_host_platform_device_count=2')
  runtime.configure((8, 8), processes=2)
  assert os.environ['XLA_FLAGS'].split() == ['--xla_force_host_platform_device_count=2',
                                             '--xla_cpu_collective_timeout_seconds=3600']
  monkeypatch.setenv('XLA_FLAGS', '--xla_cpu_collective_timeout_seconds=60')
  runtime.configure((8, 8), processes=2)
  assert os.environ['XLA_FLAGS'].count('collective_timeout') == 1
  monkeypatch.setenv('XLA_FLAGS', '--xla_force_host_platform_device_count=2')
  runtime.configure((8, 8), processes=1)
  assert 'collective_timeout' not in os.environ['XLA_FLAGS']
  for bad in ('0', '15m', '-1'):
    monkeypatch.setenv(runtime.TIMEOUT_ENV, bad)
    with pytest.raises(ConfigError, match=runtime.TIMEOUT_ENV):
      runtime.distributed_timeout()
