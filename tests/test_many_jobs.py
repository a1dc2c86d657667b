"""Many jobs on one shared filesystem: the lock files, preparers of one data_dir at once, a
preparer killed while it builds, and a sweep run as a job array.

The subprocesses run the real entry points; each prepares a folder dataset of a few 32x32
images, which TFDS builds in about a second."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

from tests.helpers import dataset_config, write_folder_tree
from unet_flax import locks
from unet_flax.data import dataset as dataset_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1')
PREPARE = [sys.executable, '-m', 'experiments.prepare_data', '--config=configs/test.py',
           '--config.dataset.config=folder']


def assert_whole(data_dir, manual_dir, n=3):
  """Built, every example readable, the source recorded, nothing unfinished or locked left."""
  builder = dataset_lib.make_builder(dataset_config('folder', data_dir, manual_dir))
  assert dataset_lib.is_prepared(builder)
  for split in ('train', 'validation', 'test'):
    source = builder.as_data_source(split=split)
    ids = sorted(source[i]['id'] for i in range(len(source)))
    assert ids == [str(i).encode() for i in range(n)]
  assert dataset_lib.read_source(builder)['manual_dir'] == str(manual_dir)
  leftovers = [p.name for p in (data_dir / 'face_segmentation').rglob('*')
               if p.name.startswith('incomplete.') or p.name.endswith('.lock')]
  assert not leftovers


# --- the lock file ------------------------------------------------------------------------------

def test_a_lock_whose_holder_stopped_renewing_it_is_taken_over(tmp_path, monkeypatch):
  """A holder on another host cannot be checked by PID: a waiter takes the lock over once its
  heartbeat has stopped, and says once whom it waits for."""
  monkeypatch.setattr(locks, 'STALE_AFTER_SECONDS', 0.5)
  monkeypatch.setattr(locks, 'POLL_SECONDS', 0.05)
  path = str(tmp_path / 'prepare.lock')
  elsewhere = {'host': 'another-host', 'pid': 1, 'started': 'earlier', 'token': 'theirs'}
  with open(path, 'w') as f:
    json.dump(elsewhere, f)
  assert locks.FileLock(path).acquire() == elsewhere  # not judged stale without waiting
  told = []
  lock = locks.FileLock(path, heartbeat=True)
  assert lock.acquire(wait=True, on_wait=told.append) is None
  assert told == [elsewhere]
  assert json.load(open(path))['pid'] == os.getpid()
  lock.release()
  assert not os.path.exists(path)


def test_a_held_lock_is_renewed_and_waited_for(tmp_path, monkeypatch):
  monkeypatch.setattr(locks, 'HEARTBEAT_SECONDS', 0.05)
  monkeypatch.setattr(locks, 'POLL_SECONDS', 0.05)
  path = str(tmp_path / 'prepare.lock')
  holder = locks.FileLock(path, heartbeat=True)
  holder.acquire()
  first = os.stat(path).st_mtime_ns
  deadline = time.time() + 30
  while os.stat(path).st_mtime_ns == first and time.time() < deadline:
    time.sleep(0.05)
  assert os.stat(path).st_mtime_ns != first  # the heartbeat touched it
  told, got = [], threading.Event()
  waiter = threading.Thread(target=lambda: (
      locks.FileLock(path).acquire(wait=True, on_wait=told.append), got.set()))
  waiter.start()
  while not told:
    time.sleep(0.05)
  assert not got.is_set() and told[0]['token'] == holder.record['token']
  holder.release()
  waiter.join(timeout=60)
  assert got.is_set() and json.load(open(path))['pid'] == os.getpid()


# --- preparing one data_dir ---------------------------------------------------------------------

def test_preparers_at_once_wait_for_the_holder_and_build_once(tmp_path):
  """Three preparers start while another process holds the lock; each says once whom it waits
  for. When it is released they race: exactly one builds, the others reuse its build."""
  write_folder_tree(tmp_path / 'dl')
  data_dir = tmp_path / 'tfds'
  holder = locks.FileLock(str(data_dir / 'face_segmentation' / dataset_lib.LOCK_FILE))
  holder.acquire()
  args = PREPARE + [f'--config.dataset.manual_dir={tmp_path / "dl"}',
                    f'--config.dataset.data_dir={data_dir}']
  logs = [(open(tmp_path / f'{i}.out', 'w+'), open(tmp_path / f'{i}.err', 'w+')) for i in range(3)]
  procs = [subprocess.Popen(args, cwd=REPO, env=ENV, stdout=out, stderr=err) for out, err in logs]
  waiting = f'being prepared by another process (PID {os.getpid()} on '
  deadline = time.time() + 240
  while not all(waiting in (tmp_path / f'{i}.err').read_text() for i in range(3)):
    assert time.time() < deadline and all(p.poll() is None for p in procs), 'one did not wait'
    time.sleep(0.2)
  holder.release()
  for proc in procs:
    assert proc.wait(timeout=240) == 0
  outs = [(tmp_path / f'{i}.out').read_text() for i in range(3)]
  errs = [(tmp_path / f'{i}.err').read_text() for i in range(3)]
  assert sum(o.count('Preparing face_segmentation/folder') for o in outs) == 1, outs
  assert all(e.count(waiting) == 1 and 'Traceback' not in e for e in errs), errs
  assert all('face_segmentation/folder ready in' in o for o in outs)
  assert_whole(data_dir, tmp_path / 'dl')


_KILLED_PREPARER = """
import os, signal, sys
sys.path.insert(0, {repo!r})
from tests.helpers import dataset_config
from unet_flax.data import dataset, folder

real = folder.iter_examples

def dying(*args, **kwargs):  # the power goes after the first example is written
  for i, example in enumerate(real(*args, **kwargs)):
    if i == 1:
      os.kill(os.getpid(), signal.SIGKILL)
    yield example

folder.iter_examples = dying
dataset.prepare(dataset_config('folder', {data_dir!r}, {manual_dir!r}))
"""


def test_a_killed_preparer_leaves_no_lock_and_no_half_build_in_the_way(tmp_path, caplog):
  write_folder_tree(tmp_path / 'dl')
  data_dir = tmp_path / 'tfds'
  killed = subprocess.run([sys.executable, '-c', _KILLED_PREPARER.format(
      repo=REPO, data_dir=str(data_dir), manual_dir=str(tmp_path / 'dl'))], env=ENV,
      capture_output=True, text=True, timeout=240)
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
  config_dir = data_dir / 'face_segmentation' / 'folder'
  unfinished = [p.name for p in config_dir.iterdir() if p.name.startswith('incomplete.')]
  assert len(unfinished) == 1 and not (config_dir / '1.0.0').exists()  # what the kill left
  assert (data_dir / 'face_segmentation' / dataset_lib.LOCK_FILE).exists()
  dataset_lib.prepare(dataset_config('folder', data_dir, tmp_path / 'dl'))
  assert 'Taking over the lock' in caplog.text and 'is no longer running' in caplog.text
  assert f'Removing {config_dir / unfinished[0]}' in caplog.text
  assert_whole(data_dir, tmp_path / 'dl')


def test_where_the_lock_does_not_hold_the_build_that_finishes_second_uses_the_first(
    tmp_path, monkeypatch, caplog):
  """As on a filesystem where the lock is not seen by another host: that host's build finishes
  while ours runs. TFDS cannot rename ours into place; the one in place is used."""
  import tensorflow_datasets as tfds

  from unet_flax.data.face_segmentation import Builder
  write_folder_tree(tmp_path / 'dl')
  cfg = dataset_config('folder', tmp_path / 'tfds', tmp_path / 'dl')
  real = Builder._download_and_prepare

  def racing(self, dl_manager, download_config):
    monkeypatch.setattr(Builder, '_download_and_prepare', real)
    other_host = dataset_lib.make_builder(cfg)
    other_host.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(tmp_path / 'dl')))
    real(self, dl_manager, download_config)

  monkeypatch.setattr(Builder, '_download_and_prepare', racing)
  dataset_lib.prepare(cfg)
  assert 'was finished by another process while this one built it too' in caplog.text
  assert_whole(tmp_path / 'tfds', tmp_path / 'dl')


# --- a sweep as a job array ---------------------------------------------------------------------

def _sweep(*args):
  return subprocess.run([sys.executable, '-m', 'experiments.sweep', *args], cwd=REPO, env=ENV,
                        capture_output=True, text=True, timeout=600)


def test_a_sweep_run_as_a_job_array_equals_the_sequential_sweep(tmp_path):
  """The printed commands run at once on a fresh data_dir (each job prepares it on its first use),
  then the sweep command collects: the same results.md (but for wall times) and curves.png as
  the sweep run one after another, and the dataset was built once."""
  write_folder_tree(tmp_path / 'dl', n=8)
  plan = ['--config=configs/test.py', '--set=dataset.config=folder',
          f'--set=dataset.manual_dir={tmp_path / "dl"}', '--set=num_train_steps=2',
          '--set=eval_every_steps=2', '--set=log_every_steps=1',
          '--sweep=optimizer.learning_rate=1e-3,1e-2']
  sequential = _sweep(*plan, f'--set=dataset.data_dir={tmp_path / "tfds_a"}',
                      f'--output={tmp_path / "a"}')
  assert sequential.returncode == 0, sequential.stderr[-3000:]
  array = [*plan, f'--set=dataset.data_dir={tmp_path / "tfds_b"}', f'--output={tmp_path / "b"}']
  lines = _sweep(*array, '--print_commands').stdout.strip().splitlines()
  assert len(lines) == 2
  jobs = [subprocess.Popen(['bash', '-c', line], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True) for line in lines]
  outputs = [job.communicate(timeout=600) for job in jobs]
  assert all(job.returncode == 0 for job in jobs), [err[-3000:] for _, err in outputs]
  assert sum(out.count('Preparing face_segmentation/folder') for out, _ in outputs) == 1
  collected = _sweep(*array)
  assert collected.returncode == 0, collected.stderr[-3000:]
  assert collected.stdout.count('finished, skipped') == 2
  table = lambda d: re.sub(r'\| [\d.]+ min \|', '| - |', (tmp_path / d / 'results.md').read_text())
  assert table('a') == table('b') and '| optimizer.learning_rate=1e-2 |' in table('a')
  # Matplotlib's Agg PNG holds no time stamp: the same curves give the same bytes.
  curves = lambda d: (tmp_path / d / 'curves.png').read_bytes()
  assert curves('a') == curves('b')
  for name in ('optimizer.learning_rate=1e-3', 'optimizer.learning_rate=1e-2'):
    assert json.load(open(tmp_path / 'b' / name / 'eval_test.json'))['step'] == 2
