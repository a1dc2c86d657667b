"""Two processes on 127.0.0.1 (gloo collectives), two CPU devices each: train, checkpoint, resume."""

import json
import os
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _run_two_processes(data_dir, workdir, steps):
  port = _free_port()
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  procs = [subprocess.Popen([sys.executable, os.path.join(HERE, 'multihost_worker.py'), str(port), str(i),
                             str(data_dir), str(workdir), str(steps)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
           for i in range(2)]
  results = []
  for proc in procs:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    results.append(json.loads(next(l for l in out.splitlines() if l.startswith('RESULT '))[7:]))
  return results


def test_two_hosts_train_checkpoint_and_resume(tmp_path, synthetic_data_dir, synthetic_builder):
  first = _run_two_processes(synthetic_data_dir, tmp_path, 2)
  assert [r['process'] for r in first] == [0, 1] and first[0]['devices'] == 4
  assert first[0] == {**first[1], 'process': 0}  # metrics are global: the same on both hosts
  assert os.listdir(tmp_path / 'checkpoints') == ['2']
  resumed = _run_two_processes(synthetic_data_dir, tmp_path, 4)
  assert resumed[0]['loss'] == resumed[1]['loss'] != first[0]['loss']
  rows = [json.loads(l) for l in open(tmp_path / 'metrics.jsonl')]  # written by process 0 only
  assert [(r['step'], r['split']) for r in rows if r['split'] != 'summary'] == [
      (2, 'train'), (2, 'validation'), (4, 'train'), (4, 'validation')]
  assert sorted(os.listdir(tmp_path / 'checkpoints')) == ['2', '4']
