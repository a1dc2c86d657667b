"""`experiments.main` as 2 processes x 2 CPU devices (gloo on 127.0.0.1) equals 1 process x 4
devices; every process takes part in its checkpoint saves and in the restore behind the
end-of-training pictures.

One two-process run only: on CPU its programs (with gloo collectives) are compiled afresh on
every start, about 35 s on 2 cores, so a second run to test the resume would double the
cost. Resuming is exact in one process (test_train) and the input sequence does not depend
on the host count (test_data), which together cover a multi-process resume."""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import test as test_config
from unet_flax import checkpoints, train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# SGD: Adam's first steps move parameters by about lr * sign(gradient), which turns float
# rounding in near-zero gradients into lr-sized differences (see test_train).
OVERRIDES = ['--config=configs/test.py', '--config.loss.name=bce_dice', '--config.model.norm=batch',
             '--config.model.dropout=0.1', '--config.optimizer.name=sgd', '--config.optimizer.learning_rate=0.05',
             '--config.eval_every_steps=2', '--config.checkpoint_every_steps=2', '--config.log_every_steps=2']


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _main(data_dir, workdir, steps, processes):
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  env['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={4 // processes}'
  args = [sys.executable, '-m', 'experiments.main', *OVERRIDES, f'--config.dataset.data_dir={data_dir}',
          f'--workdir={workdir}', f'--config.num_train_steps={steps}']
  if processes > 1:
    port = _free_port()
    args += [f'--coordinator_address=127.0.0.1:{port}', f'--num_processes={processes}']
  procs = [subprocess.Popen(args + ([f'--process_id={i}'] if processes > 1 else []), cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(processes)]
  for i, proc in enumerate(procs):
    _, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, err[-3000:]
    assert f'process {i} of {processes}: {4 // processes} local devices' in err
  return [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]


def _restore(workdir, data_dir):
  cfg = test_config.get_config()
  cfg.dataset.data_dir = str(data_dir)
  cfg.model.norm, cfg.model.dropout, cfg.optimizer.name = 'batch', 0.1, 'sgd'
  return checkpoints.Manager(str(workdir), cfg, read_only=True).restore(
      train.Experiment(cfg).initial_state(), 'latest')[0]


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
  leaves_a, leaves_b = (list(map(np.asarray, jax.tree.leaves(s.params))) for s in (a, b))
  difference = np.sqrt(sum(np.sum((x - y) ** 2) for x, y in zip(leaves_a, leaves_b)))
  assert difference / np.sqrt(sum(np.sum(x ** 2) for x in leaves_a)) < 1e-5
