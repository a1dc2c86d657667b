"""User mistakes and faults: one clear line (exit code 2), no traceback, nothing already written lost.

Command-line cases run the real entry points in subprocesses (table-driven); library
cases call the function that decides, and check the files it must not touch.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from tests.helpers import config_with as _cfg
from tests.helpers import dataset_config, garble, pmap_steps_with_hook, write_folder_tree
from unet_flax import configuration, errors, train
from unet_flax import workdir as workdir_lib
from unet_flax.data import celebamask_hq
from unet_flax.data import dataset as dataset_lib
from unet_flax.predict import load_image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(module, *args, timeout=300, **popen):
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=2')
  return subprocess.run([sys.executable, '-m', module, *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=timeout, **popen)


def _assert_user_error(done, *names, code=2):
  assert done.returncode == code, (done.returncode, done.stderr[-3000:])
  assert 'Traceback' not in done.stderr, done.stderr[-3000:]
  error_lines = [l for l in done.stderr.splitlines() if l.startswith('error: ')]
  assert len(error_lines) == 1, done.stderr[-3000:]
  for name in names:
    assert name in error_lines[0], (name, error_lines[0])


# --- the command line: flags, config files and config values -----------------------------------

CLI_CASES = {
    'misspelled override': (['--config.optimizer.learning_rat=0.1'], ['learning_rat', 'learning_rate']),
    'missing config file': (['--config=configs/nope.py'], ['configs/nope.py']),
    'override of the wrong type': (['--config.batch_size=abc'], ['batch_size']),
    'eval batch not divisible': (['--config.eval_batch_size=3'], ['config.eval_batch_size=3']),
    'workdir is a file': (['--workdir={file}/run'], ['{file}']),
    'data_dir is a file': (['--config.dataset.data_dir={file}/tfds'], ['{file}', 'data_dir']),
}


@pytest.mark.parametrize('case', sorted(CLI_CASES))
def test_cli_mistake_is_one_line_and_writes_nothing(case, tmp_path, synthetic_data_dir, synthetic_builder):
  a_file = tmp_path / 'a_file'
  a_file.write_text('not a folder')
  args, names = CLI_CASES[case]
  args = [a.format(file=a_file) for a in args]
  workdir = tmp_path / 'run'
  flags = {'--config': 'configs/test.py', '--config.dataset.data_dir': synthetic_data_dir, '--workdir': workdir}
  flags.update(a.split('=', 1) for a in args)  # --config stays first, as config_flags needs
  done = _run('experiments.main', *[f'{k}={v}' for k, v in flags.items()])
  _assert_user_error(done, *[n.format(file=a_file) for n in names])
  assert not workdir.exists()  # checked before anything was written


# The shortest command that makes each mistake, as a user types it: nothing else on the line
# that could make it fail earlier down another path.
SHORTEST_MISTAKES = {
    'main: missing config file': ('experiments.main', ['--config=configs/nope.py', '--workdir={tmp}/w'],
                                  ['configs/nope.py', 'no config file']),
    'benchmark: missing config file': ('experiments.benchmark', ['--config=configs/nope.py'], ['configs/nope.py']),
    'profile_step: missing config file': ('experiments.profile_step', ['--config=configs/nope.py'],
                                          ['configs/nope.py']),
    'scaling: missing config file': ('experiments.scaling', ['--config=configs/nope.py'], ['configs/nope.py']),
    'scaling: a device count that is no number': ('experiments.scaling', ['--config=configs/test.py', '--devices=two'],
                                                  ['--devices']),
    'scaling: a strong batch that does not split': (
        'experiments.scaling', ['--config=configs/test.py', '--mode=strong', '--devices=3'], ['batch_size=8', '[3]']),
    'benchmark_data: unknown benchmark': ('experiments.benchmark_data', ['--what=nope'], ['--what', 'pipeline']),
}


@pytest.mark.parametrize('case', sorted(SHORTEST_MISTAKES))
def test_shortest_mistaken_command_is_one_line(case, tmp_path):
  module, args, names = SHORTEST_MISTAKES[case]
  done = _run(module, *[a.format(tmp=tmp_path) for a in args], timeout=120)
  _assert_user_error(done, *names)
  assert not os.listdir(tmp_path)  # nothing written


def test_face_parsing_over_a_binary_config_picks_its_own_best_metric(synthetic_data_dir):
  cfg = _cfg(synthetic_data_dir, target='face_parsing', **{'loss.name': 'cross_entropy'})
  configuration.validate(cfg, devices=4)
  assert cfg.best_metric == 'mean_f1'
  cfg = _cfg(synthetic_data_dir, target='face_parsing')  # bce for 19 classes
  with pytest.raises(errors.ConfigError, match="loss.name='bce'"):
    configuration.validate(cfg, devices=4)


CONFIG_MISTAKES = {  # each also reaches the command line as one `error:` line, like eval_batch_size above
    'negative learning rate': ({'optimizer.learning_rate': -0.1}, 'optimizer.learning_rate=-0.1'),
    'nothing to train': ({'num_train_steps': 0, 'num_epochs': 0}, 'nothing to train'),
    'unknown best metric': ({'best_metric': 'dise'}, "best_metric='dise'"),
    'unknown loss': ({'loss.name': 'bse'}, "loss.name='bse'"),
    'unknown model kind': ({'model.kind': 'vit'}, "model.kind='vit'"),
    'dropout out of range': ({'model.dropout': 1.5}, 'model.dropout=1.5'),
    'image size not a multiple of 2**depth': ({'model.image_size': 60}, 'model.image_size=60'),
    'one eye under flips': ({'target': 'l_eye'}, "target='l_eye' is not left/right symmetric"),
    'auxiliary one eye under flips': ({'auxiliary_target': 'l_eye'},
                                      "auxiliary_target='l_eye' is not left/right symmetric"),
    'auxiliary part the dataset lacks': ({'auxiliary_target': 'eyes', 'dataset.config': 'folder'},
                                         "auxiliary_target='eyes' names parts dataset 'folder' does not have"),
    'auxiliary target for face parsing': ({'auxiliary_target': 'eyes', 'target': 'face_parsing',
                                           'loss.name': 'cross_entropy'},
                                          "auxiliary_target='eyes' needs a binary target"),
    'auxiliary target for pix2pix': ({'auxiliary_target': 'eyes', 'model.kind': 'pix2pix'},
                                     "auxiliary_target='eyes' needs a binary target and model.kind=unet"),
}


@pytest.mark.parametrize('case', sorted(CONFIG_MISTAKES))
def test_config_mistake_is_named(case, synthetic_data_dir):
  overrides, name = CONFIG_MISTAKES[case]
  with pytest.raises(errors.ConfigError, match=re.escape(name)):
    configuration.validate(_cfg(synthetic_data_dir, **overrides), devices=4)


def test_all_config_problems_are_reported_at_once(synthetic_data_dir):
  cfg = _cfg(synthetic_data_dir, batch_size=6, **{'model.dropout': 1.5, 'optimizer.name': 'adamm'})
  with pytest.raises(errors.ConfigError) as e:
    configuration.validate(cfg, devices=4)
  for field in ('config.batch_size=6', 'model.dropout', 'optimizer.name'):
    assert field in str(e.value)


# --- the workdir: one experiment, one training at a time ---------------------------------------

def _snapshot(workdir):
  return {p: open(os.path.join(workdir, p), 'rb').read() for p in ('config.json', 'experiment.json')}


def test_workdir_refuses_another_experiment_and_allows_longer_training(
    trained_workdir, synthetic_data_dir, tmp_path):
  before = _snapshot(trained_workdir)
  with pytest.raises(workdir_lib.WorkdirMismatchError, match="target: 'eyeglasses' -> 'eyes'"):
    train.train_and_evaluate(_cfg(synthetic_data_dir, target='eyes', num_train_steps=3), str(trained_workdir))
  with pytest.raises(workdir_lib.WorkdirMismatchError, match='model.base_features'):
    train.evaluate_checkpoint(_cfg(synthetic_data_dir, **{'model.base_features': 8}), str(trained_workdir))
  assert _snapshot(trained_workdir) == before
  assert not (trained_workdir / 'train.lock').exists()
  # Fields that may change on resume are allowed, and recorded.
  longer = _cfg(synthetic_data_dir, num_train_steps=9, log_every_steps=3, auxiliary_target='eyes')
  configuration.validate(longer, devices=4)
  changes = workdir_lib.Workdir(trained_workdir).check_same_experiment(
      longer, json.load(open(trained_workdir / 'experiment.json'))['dataset'], has_checkpoints=True)
  assert changes == {'log_every_steps': (2, 3), 'num_train_steps': (3, 9)}


def test_training_lock_refuses_a_second_run_and_takes_over_a_stale_one(tmp_path):
  with workdir_lib.Workdir(tmp_path).lock():
    with pytest.raises(workdir_lib.WorkdirBusyError, match=f'PID {os.getpid()}'):
      workdir_lib.Workdir(tmp_path).lock().__enter__()
  assert not (tmp_path / 'train.lock').exists()
  dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True,
                        text=True).stdout.strip()
  (tmp_path / 'train.lock').write_text(json.dumps({'host': os.uname().nodename, 'pid': int(dead)}))
  with workdir_lib.Workdir(tmp_path).lock():
    assert json.load(open(tmp_path / 'train.lock'))['pid'] == os.getpid()


def test_torn_metrics_line_is_skipped_with_a_warning_and_report_still_works(trained_workdir, tmp_path, caplog):
  workdir = tmp_path / 'copy'
  os.makedirs(workdir)
  for name in ('config.json', 'provenance.json', 'metrics.jsonl'):
    (workdir / name).write_bytes((trained_workdir / name).read_bytes())
  rows = workdir_lib.Workdir(workdir).read_metrics()
  with open(workdir / 'metrics.jsonl', 'a') as f:
    f.write('{"step": 4, "split": "tra')  # killed mid-write
  assert workdir_lib.Workdir(workdir).read_metrics() == rows
  assert 'metrics.jsonl:%d' % (len(rows) + 1) in caplog.text
  done = _run('experiments.report', str(workdir), f'--output={tmp_path / "r.md"}')
  assert done.returncode == 0 and 'Traceback' not in done.stderr, done.stderr[-2000:]
  workdir_lib.Workdir(workdir).metric_writer().close()  # a new writer ends the torn line first
  assert open(workdir / 'metrics.jsonl').read().endswith('\n')


def test_eval_prints_metrics_even_when_it_cannot_write_them(trained_workdir, synthetic_data_dir):
  target = trained_workdir / 'eval_validation.json'
  os.makedirs(target)  # a folder where the file goes: unwritable, even for root
  try:
    done = _run('experiments.main', '--config=configs/test.py', f'--config.dataset.data_dir={synthetic_data_dir}',
                '--config.num_train_steps=3', '--config.auxiliary_target=eyes', f'--workdir={trained_workdir}',
                '--mode=eval', '--split=validation')
  finally:
    os.rmdir(target)
  _assert_user_error(done, str(target))
  printed = json.loads(done.stdout)  # stdout is the results alone: status lines go to stderr
  assert printed['step'] == 3 and printed['target'] == 'eyeglasses' and 'dice' in printed
  assert printed['dataset']['config'] == 'synthetic_seed7_24_6_5'


# --- faults: a damaged checkpoint -------------------------------------------------------------

DAMAGED_ONLY_CHECKPOINT = {
    'eval': ('experiments.main', ['--config=configs/test.py', '--config.dataset.data_dir={data}',
                                  '--config.num_train_steps=3', '--config.auxiliary_target=eyes',
                                  '--workdir={run}', '--mode=eval', '--checkpoint=latest']),
    'predict': ('experiments.predict', ['--workdir={run}', '--from_test_split=1',
                                        '--output={run}/out']),
}


@pytest.mark.parametrize('command', sorted(DAMAGED_ONLY_CHECKPOINT))
def test_a_damaged_only_checkpoint_is_one_line(command, trained_workdir, synthetic_data_dir,
                                               tmp_path):
  """Every file of the one checkpoint overwritten (a failing disk, a half-finished copy): one line
  naming the step and the file, and the files are left as they are."""
  import shutil
  run = tmp_path / 'run'
  shutil.copytree(trained_workdir, run)
  garble(run / 'checkpoints' / '3')
  before = {p: p.read_bytes() for p in (run / 'checkpoints').rglob('*') if p.is_file()}
  module, args = DAMAGED_ONLY_CHECKPOINT[command]
  done = _run(module, *[a.format(data=synthetic_data_dir, run=run) for a in args])
  _assert_user_error(done, 'no checkpoint in', 'step 3: metrics/metrics')
  assert {p: p.read_bytes() for p in (run / 'checkpoints').rglob('*') if p.is_file()} == before


# --- faults: signals ---------------------------------------------------------------------------

def test_sigterm_saves_a_checkpoint_and_says_how_to_resume(tmp_path, synthetic_data_dir, synthetic_builder):
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=2')
  args = ['--config=configs/test.py', f'--config.dataset.data_dir={synthetic_data_dir}', f'--workdir={tmp_path}',
          '--config.num_train_steps=100000', '--config.eval_every_steps=100000',
          '--config.checkpoint_every_steps=100000', '--config.log_every_steps=1']
  proc = subprocess.Popen([sys.executable, '-m', 'experiments.main', *args], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 240
  for line in proc.stdout:  # wait until it trains
    if line.startswith('[train] step 2') or time.time() > deadline:
      break
  proc.send_signal(signal.SIGTERM)
  out, err = proc.communicate(timeout=120)
  _assert_user_error(subprocess.CompletedProcess(args, proc.returncode, out, err), 'Rerun the same command',
                     code=128 + signal.SIGTERM)
  steps = [int(n) for n in os.listdir(tmp_path / 'checkpoints') if n.isdigit()]
  assert len(steps) == 1 and steps[0] >= 2
  assert not (tmp_path / 'train.lock').exists()


def test_ctrl_c_saves_at_the_current_step(tmp_path, synthetic_data_dir, synthetic_builder, monkeypatch):
  """In this process: Ctrl-C (SIGINT) arrives at step 3 of 100 and training stops there, saved."""
  cfg = _cfg(synthetic_data_dir, num_train_steps=100, eval_every_steps=100, checkpoint_every_steps=100)
  monkeypatch.setattr(train, 'pmap_steps', pmap_steps_with_hook(
      lambda n: os.kill(os.getpid(), signal.SIGINT) if n == 3 else None))
  handler_before = signal.getsignal(signal.SIGINT)  # SIG_IGN in a background job (CI)
  with pytest.raises(train.Interrupted, match='stopped by SIGINT at step 3/100') as e:
    train.train_and_evaluate(cfg, str(tmp_path))
  assert e.value.exit_code == 130
  assert sorted(int(n) for n in os.listdir(tmp_path / 'checkpoints') if n.isdigit()) == [3]
  assert signal.getsignal(signal.SIGINT) == handler_before  # the handler is put back


def _children(pid: int) -> list[int]:
  kids = []
  for entry in os.listdir('/proc'):
    if entry.isdigit():
      try:
        with open(f'/proc/{entry}/stat') as f:
          if int(f.read().rsplit(')', 1)[1].split()[1]) == pid:
            kids.append(int(entry))
      except (OSError, ValueError, IndexError):
        pass
  return kids


def test_killed_prepare_data_takes_its_drawing_workers_with_it(tmp_path):
  proc = subprocess.Popen([sys.executable, '-m', 'experiments.prepare_data', '--config=configs/test.py',
                           f'--config.dataset.data_dir={tmp_path}',
                           "--config.dataset.synthetic_sizes={'train': 3000, 'validation': 10, 'test': 10}"],
                          cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline, workers = time.time() + 120, []
  while time.time() < deadline and len(workers) < 2:  # the pool's spawned workers (and its tracker)
    time.sleep(0.5)
    workers = [k for k in _children(proc.pid) if os.path.exists(f'/proc/{k}')]
  assert len(workers) >= 2, 'no drawing workers started'
  time.sleep(2)  # let them get to work
  proc.kill()
  proc.wait()
  deadline = time.time() + 15
  while time.time() < deadline and any(os.path.exists(f'/proc/{w}') for w in workers):
    for w in workers:  # reap any that are our zombies
      try:
        os.waitpid(w, os.WNOHANG)
      except ChildProcessError:
        pass
    time.sleep(0.2)
  alive = [w for w in workers if os.path.exists(f'/proc/{w}') and open(f'/proc/{w}/stat').read().split()[2] != 'Z']
  assert not alive, f'workers {alive} outlived their parent'


# --- data: every bad input named before anything is written ------------------------------------

def test_folder_build_names_every_bad_file_and_writes_nothing(tmp_path):
  root = tmp_path / 'dl'
  write_folder_tree(root)
  images, masks = root / 'train' / 'images', root / 'train' / 'masks'
  good = (images / '0.jpg').read_bytes()
  (images / '0.jpg').write_bytes(good[:len(good) // 2])  # truncated
  (images / '1.jpg').write_bytes(os.urandom(500))  # random bytes
  (root / 'val' / 'images' / '2.jpg').write_bytes(b'')  # zero bytes
  (root / 'val' / 'masks' / '1.png').write_bytes((masks / '1.png').read_bytes()[:60])  # corrupt mask
  Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / 'test' / 'masks' / '0.png')  # other size
  (images / '._2.jpg').write_bytes(b'\0AppleDouble')  # ignored
  (images / '.DS_Store').write_bytes(b'\0')  # ignored
  os.symlink('loop_b.jpg', images / 'loop_a.jpg')
  os.symlink('loop_a.jpg', images / 'loop_b.jpg')
  os.symlink('loop_a.png', masks / 'loop_a.png')
  os.symlink('loop_b.png', masks / 'loop_b.png')
  os.symlink('missing.jpg', root / 'test' / 'images' / 'dangling.jpg')
  os.symlink(os.path.abspath(masks / '2.png'), root / 'test' / 'masks' / 'dangling.png')
  data_dir = tmp_path / 'tfds'
  with pytest.raises(errors.DatasetLayoutError) as e:
    dataset_lib.prepare(dataset_config('folder', data_dir, root))
  message = str(e.value)
  for bad in ('train/images/0.jpg', 'train/images/1.jpg', 'val/images/2.jpg', 'val/masks/1.png',
              'test/masks/0.png: mask is 16x16', 'loop_a.jpg', 'loop_b.jpg', 'dangling.jpg'):
    assert bad in message, (bad, message)
  assert '._2' not in message and 'DS_Store' not in message and '\n' not in message
  assert not list(data_dir.rglob('dataset_info.json'))


def test_two_images_with_one_stem_are_an_error(tmp_path):
  root = tmp_path / 'dl'
  write_folder_tree(root)
  Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / 'train' / 'images' / '1.png')
  with pytest.raises(errors.DatasetLayoutError, match='1.jpg and 1.png'):
    dataset_lib.prepare(dataset_config('folder', tmp_path / 'tfds', root))


def test_all_white_and_empty_masks_are_counted_in_one_warning(tmp_path, caplog):
  root = tmp_path / 'dl'
  write_folder_tree(root)
  Image.fromarray(np.full((32, 32), 255, np.uint8)).save(root / 'train' / 'masks' / '0.png')
  Image.fromarray(np.zeros((32, 32), np.uint8)).save(root / 'val' / 'masks' / '0.png')
  dataset_lib.prepare(dataset_config('folder', tmp_path / 'tfds', root))
  warnings = [r.getMessage() for r in caplog.records if 'entirely' in r.getMessage()]
  assert len(warnings) == 1 and '1 mask(s) are entirely 0' in warnings[0] and '1 entirely 255' in warnings[0]


def test_other_inputs_into_a_built_data_dir_are_refused(tmp_path):
  write_folder_tree(tmp_path / 'a')
  write_folder_tree(tmp_path / 'b', n=4)
  builder = dataset_lib.prepare(dataset_config('folder', tmp_path / 'tfds', tmp_path / 'a'))
  info = (builder.data_path / 'dataset_info.json').read_bytes()
  dataset_lib.prepare(dataset_config('folder', tmp_path / 'tfds', tmp_path / 'a'))  # same: reused
  with pytest.raises(errors.DatasetLayoutError, match='differ'):
    dataset_lib.prepare(dataset_config('folder', tmp_path / 'tfds', tmp_path / 'b'))
  assert (builder.data_path / 'dataset_info.json').read_bytes() == info


def test_duplicated_mapping_rows_are_named(tmp_path):
  from tests.helpers import write_celebamask_tree
  write_celebamask_tree(str(tmp_path))
  mapping = tmp_path / celebamask_hq.MAPPING_FILE
  mapping.write_text(mapping.read_text() + '2000  162770  162771.jpg\n')
  with pytest.raises(errors.DatasetLayoutError, match='idx 2000 on lines 4 and 8'):
    celebamask_hq.read_split_indices(str(tmp_path))


def test_celebamask_corrupt_mask_is_named(tmp_path):
  from tests.helpers import write_celebamask_tree
  write_celebamask_tree(str(tmp_path))
  bad = next((tmp_path / celebamask_hq.ANNO_DIR / '1').glob('*.png'))
  bad.write_bytes(bad.read_bytes()[:40])
  with pytest.raises(errors.DatasetLayoutError, match=bad.name):
    dataset_lib.prepare(dataset_config('celebamask_hq', tmp_path / 'tfds', tmp_path))


# --- prediction inputs ---------------------------------------------------------------------------

def test_images_load_as_a_viewer_shows_them(tmp_path):
  ramp = (np.arange(64, dtype=np.uint32)[None].repeat(8, 0) * 1000).astype(np.uint16)  # 0..63000
  Image.fromarray(ramp).save(tmp_path / 'deep.png')
  loaded = np.asarray(load_image(str(tmp_path / 'deep.png')))[..., 0]
  assert loaded.dtype == np.uint8 and loaded.min() == 0 and 240 <= loaded.max() <= 255
  assert (loaded < 250).mean() > 0.9  # not clipped to white
  floats = np.linspace(0, 1, 64, dtype=np.float32)[None].repeat(8, 0)
  Image.fromarray(floats, mode='F').save(tmp_path / 'float.tiff')
  assert np.asarray(load_image(str(tmp_path / 'float.tiff')))[0, -1, 0] == 255
  # EXIF orientation 6 (rotate 90 degrees clockwise to view): a 40x20 file shows as 20x40.
  img = Image.fromarray(np.zeros((20, 40, 3), np.uint8))
  exif = img.getexif()
  exif[0x0112] = 6
  img.save(tmp_path / 'phone.jpg', exif=exif)
  assert load_image(str(tmp_path / 'phone.jpg')).size == (20, 40)
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / 'anim.gif')
  assert load_image(str(tmp_path / 'anim.gif')).mode == 'RGB'


PREDICT_CASES = {
    'missing input': (['--input={tmp}/nope.jpg'], ['nope.jpg']),
    'folder without images': (['--input={tmp}/empty'], ['empty']),
    'output is a file': (['--input={tmp}/one.png', '--output={tmp}/one.png'], ['--output']),
    'no input at all': ([], ['--input']),
}


@pytest.mark.parametrize('case', sorted(PREDICT_CASES))
def test_predict_checks_inputs_before_loading_the_model(case, tmp_path):
  os.makedirs(tmp_path / 'empty')
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / 'one.png')
  args, names = PREDICT_CASES[case]
  # The workdir does not exist: a check that ran after loading the model would say so instead.
  done = _run('experiments.predict', f'--workdir={tmp_path}/no_run', *[a.format(tmp=tmp_path) for a in args])
  _assert_user_error(done, *names)
