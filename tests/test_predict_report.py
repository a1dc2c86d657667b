"""Prediction on user images, the results table, and end-of-training pictures."""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from unet_flax import reports

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(module, *args):
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1')
  return subprocess.run([sys.executable, '-m', module, *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=300)


def test_training_writes_pictures_and_tensorboard(trained_workdir):
  for name in ('training_history.png', 'sample_predictions.png'):
    with Image.open(trained_workdir / name) as img:
      assert img.size[0] > 300 and img.size[1] > 200
  # Read back as TensorBoard reads it (no TensorFlow installed): scalars and image strips.
  from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
  events = EventAccumulator(str(trained_workdir / 'tensorboard'), size_guidance={'images': 0}).Reload()
  tags = events.Tags()
  assert {'train/loss', 'validation/dice'} <= set(tags['scalars'])
  assert [e.step for e in events.Scalars('validation/dice')] == [3]
  assert 'validation/image_truth_prediction' in tags['images']


def test_predict_any_image_mode_and_size_skipping_bad_files(trained_workdir, tmp_path):
  photos, masks = tmp_path / 'photos', tmp_path / 'masks'
  photos.mkdir()
  masks.mkdir()
  Image.new('RGBA', (90, 70), (200, 10, 10, 128)).save(photos / 'rgba.png')
  Image.new('L', (33, 51), 90).save(photos / 'grey.jpg')
  Image.new('1', (20, 30)).save(masks / 'grey.png')
  (photos / 'notes.txt').write_text('not an image')
  (photos / 'broken.jpg').write_bytes(b'\xff\xd8 definitely not a jpeg')
  done = _run('experiments.predict', f'--workdir={trained_workdir}', f'--input={photos}',
              f'--masks={masks}', f'--output={tmp_path / "out"}')
  assert done.returncode == 0, done.stderr[-3000:]
  assert 'broken.jpg' in done.stderr and 'Traceback' not in done.stderr
  with Image.open(tmp_path / 'out' / 'rgba_mask.png') as mask:
    assert mask.size == (90, 70) and set(np.unique(np.asarray(mask))) <= {0, 255}
  with Image.open(tmp_path / 'out' / 'grey_mask.png') as mask:
    assert mask.size == (33, 51)
  with Image.open(tmp_path / 'out' / 'grey_overlay.png') as overlay:  # beside the ground truth
    assert overlay.size == (66, 51)
  assert not (tmp_path / 'out' / 'broken_mask.png').exists()
  assert 'note: this model was trained on the built-in synthetic' in done.stderr  # not a photo model
  assert 'measured on real photographs with configs/quick.py' in done.stderr  # what it scored there


def test_predict_inside_a_crop_box(trained_workdir, tmp_path):
  photos = tmp_path / 'photos'
  photos.mkdir()
  rng = np.random.default_rng(0)
  Image.fromarray(rng.integers(0, 255, (100, 120, 3), np.uint8)).save(photos / 'wide.png')
  Image.new('RGB', (40, 40)).save(photos / 'small.png')
  done = _run('experiments.predict', f'--workdir={trained_workdir}', f'--input={photos}', '--crop=10,20,74,84',
              f'--output={tmp_path / "out"}')
  assert done.returncode == 0, done.stderr[-3000:]
  assert 'skipped' in done.stderr and 'small.png' in done.stderr and '--crop=10,20,74,84' in done.stderr
  mask = np.asarray(Image.open(tmp_path / 'out' / 'wide_mask.png'))
  assert mask.shape == (100, 120)
  outside = mask.copy()
  outside[20:84, 10:74] = 0
  assert not outside.any()
  bad = _run('experiments.predict', f'--workdir={trained_workdir}', f'--input={photos}', '--crop=50,0,10,10')
  assert bad.returncode == 2 and 'x0 < x1' in bad.stderr and 'Traceback' not in bad.stderr


def test_predict_missing_workdir_is_a_clear_error(tmp_path):
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / 'x.jpg')
  done = _run('experiments.predict', f'--workdir={tmp_path / "nope"}', f'--input={tmp_path / "x.jpg"}')
  assert done.returncode == 2 and 'config.json' in done.stderr and 'Traceback' not in done.stderr


def test_report_table_has_a_row_per_workdir(trained_workdir, tmp_path):
  (trained_workdir / 'eval_test.json').write_text(json.dumps(
      {'step': 3, 'split': 'test', 'bce': 0.5, 'accuracy': 0.9, 'dice': 0.25, 'iou': 0.1}))
  (tmp_path / 'not_a_run').mkdir()
  text = reports.table([str(trained_workdir), str(tmp_path / 'not_a_run')])
  lines = text.strip().splitlines()
  assert len(lines) == 3 and '| eyeglasses |' in lines[2] and '0.2500' in lines[2]
  assert lines[2].split('|')[4].strip() == '3'  # steps


def test_face_parsing_pictures_carry_a_legend_and_a_per_class_table():
  from unet_flax import metrics, pictures
  from unet_flax.data import parts as parts_lib
  names = parts_lib.class_names('face_parsing', parts_lib.CELEBAMASK_HQ_PARTS)
  for size in (256, 64):  # one column of 13-pixel rows; or 11-pixel rows wrapped in columns
    labels = np.arange(19, dtype=np.uint8).repeat(size // 19 + 1)[:size][None].repeat(size, 0)
    picture = pictures.with_legend(pictures.colourize(labels, 19), names)
    assert picture.shape[0] == size and picture.shape[1] > size + 40
    panel, row = picture[:, size:], max(11, size // 19)
    per_column, column = size // row, (picture.shape[1] - size) // -(-19 // (size // row))
    for i in (0, 5, 18):  # each class's swatch has its palette colour, in class order
      y, x = (i % per_column) * row + row // 2, (i // per_column) * column + 3 + row // 2
      assert (panel[y, x] == pictures.PALETTE[i]).all(), (size, i)
  summary = {'mean_f1': 0.5, 'mean_iou': 0.4, **{f'f1/{n}': 0.5 for n in names},
             **{f'iou/{n}': 0.4 for n in names}, 'f1/hat': None, 'iou/hat': None}
  table = metrics.per_class_markdown(summary, 'face_parsing, test split')
  assert '| l_eye | 0.5000 | 0.4000 |' in table and '| hat | - | - |' in table
  assert table.count('\n|') == 2 + 19 + 1  # header, rule, 19 classes, mean


def test_sweep_grid_zip_and_commands(tmp_path, synthetic_data_dir):
  common = ['--config=configs/test.py', f'--set=dataset.data_dir={synthetic_data_dir}', f'--output={tmp_path}']
  grid = _run('experiments.sweep', *common, '--sweep=optimizer.name=adam,sgd',
              '--sweep=optimizer.learning_rate=1e-3,1e-2', '--print_commands')
  assert grid.returncode == 0, grid.stderr[-2000:]
  lines = grid.stdout.strip().splitlines()
  assert len(lines) == 4 and all('--mode=eval' in l for l in lines)
  assert 'optimizer.name=sgd,optimizer.learning_rate=1e-3' in lines[2]
  zipped = _run('experiments.sweep', *common, '--sweep=optimizer.name=adam,sgd',
                '--sweep=optimizer.learning_rate=1e-3,1e-2', '--zip', '--print_commands')
  assert len(zipped.stdout.strip().splitlines()) == 2 and 'optimizer.learning_rate=1e-2' in zipped.stdout
  # Real runs, their results and a rerun that skips them: tests/test_many_jobs.py (as a job array).
  bad = _run('experiments.sweep', '--config=configs/test.py', '--sweep=optimizer.name', '--print_commands')
  assert bad.returncode == 2 and bad.stderr.startswith('error: --sweep=') and 'Traceback' not in bad.stderr
