"""Predicting photos: finding and framing faces, pasting masks back, scoring against references."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from unet_flax import faces, predict, scoring
from unet_flax.predict import MaskPredictor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args):
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1')
  return subprocess.run([sys.executable, '-m', 'experiments.predict', *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=300)


@pytest.fixture(scope='module')
def astronaut():
  """NASA's public-domain portrait that scikit-image ships (no download)."""
  import skimage.data
  return Image.fromarray(skimage.data.astronaut())


def test_binary_scores_pool_pixels_and_count_false_alarms():
  scorer = scoring.Scorer(('eyeglasses',))
  truth = np.zeros((4, 4), np.uint8)
  truth[:2, :2] = 1  # 4 pixels
  pred = np.zeros((8, 8), np.uint8)  # twice the size: resized to the reference by nearest
  pred[:4, :2] = 1  # 2 of the 4 at reference size, no false positive
  scorer.add('half', pred, truth)
  scorer.add('clean', np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8))
  speck = np.zeros((4, 4), np.uint8)
  speck[3, 3] = 1
  scorer.add('alarm', speck, np.zeros((4, 4), np.uint8))
  s = scorer.summary()
  # pooled: tp 2, fn 2, fp 1 (the speck)
  assert s['dice'] == pytest.approx(4 / 7) and s['iou'] == pytest.approx(2 / 5)
  assert s['precision'] == pytest.approx(2 / 3) and s['recall'] == pytest.approx(0.5)
  assert s['photos_without_target'] == 2 and s['false_alarms'] == ['alarm']
  assert s['false_alarm_rate'] == 0.5
  assert [p['dice'] for p in s['per_photo']] == [pytest.approx(2 / 3), None, 0.0]


def test_parsing_scores_per_class_and_left_right_merged():
  names = ('background', 'skin', 'nose', 'eye_g', 'l_eye', 'r_eye')
  scorer = scoring.Scorer(names)
  truth = np.array([[0, 1, 4, 5]], np.uint8)
  pred = np.array([[0, 1, 5, 4]], np.uint8)  # left and right swapped
  scorer.add('swap', pred, truth)
  s = scorer.summary()
  assert s['f1']['l_eye'] == 0 and s['f1']['r_eye'] == 0 and s['f1']['skin'] == 1
  assert s['classes_labelled'] == ['skin', 'l_eye', 'r_eye']  # nose and eye_g: not in the references
  assert s['mean_f1'] == pytest.approx(1 / 3)
  merged = s['left_right_merged']
  assert merged['classes_labelled'] == ['skin', 'eye'] and merged['mean_f1'] == 1.0
  assert s['f1']['nose'] is None  # neither labelled nor predicted


def test_reference_label_maps_are_read_as_class_ids(tmp_path):
  labels = np.array([[0, 4, 5, 11], [12, 13, 1, 0]], np.uint8)
  img = Image.fromarray(labels).convert('P')
  img.putpalette([v for i in range(256) for v in (i * 7 % 256, i * 13 % 256, i)])  # any palette
  img.save(tmp_path / 'p.png')
  read = scoring.read_reference(str(tmp_path / 'p.png'), mask_format='labels', num_classes=19)
  assert (read == labels).all()
  eyes_lips = scoring.read_reference(str(tmp_path / 'p.png'), mask_format='labels', num_classes=1,
                                     label_ids=scoring.label_ids('eyes_lips'))
  assert scoring.label_ids('eyes_lips') == (4, 5, 11, 12)
  assert (eyes_lips == [[0, 1, 1, 1], [1, 0, 0, 0]]).all()
  Image.fromarray(np.full((2, 2, 3), 255, np.uint8)).save(tmp_path / 'rgb.png')
  with pytest.raises(scoring.MaskFileError, match='rgb.png.*index PNG'):
    scoring.read_reference(str(tmp_path / 'rgb.png'), mask_format='labels', num_classes=19)
  Image.fromarray(np.full((2, 2), 255, np.uint8)).save(tmp_path / 'bw.png')
  with pytest.raises(scoring.MaskFileError, match='bw.png.*class id 255.*--mask_format=binary'):
    scoring.read_reference(str(tmp_path / 'bw.png'), mask_format='labels', num_classes=19)


def test_faces_are_found_framed_and_pasted_back(astronaut):
  found = faces.detect(astronaut)
  assert len(found) == 1  # her face; not the patch on her suit that dlib scores 0.12
  box = faces.framing(found[0])
  # CelebA-HQ framing: the eyes (at about (201, 101) and (245, 102) in this photo) a little above
  # the middle of the square, a fifth of its width apart.
  side = box.x1 - box.x0
  assert box.y1 - box.y0 == side and 140 < side < 190
  assert 0.3 < (201 - box.x0) / side < 0.45 and 0.55 < (245 - box.x0) / side < 0.7
  assert 0.38 < (101 - box.y0) / side < 0.5
  two = Image.fromarray(np.concatenate([np.asarray(astronaut), np.asarray(astronaut)[:, ::-1]], 1))
  boxes = [faces.framing(f) for f in faces.detect(two)]
  assert len(boxes) == 2 and sorted(b.x0 < 512 for b in boxes) == [False, True]
  labels = [np.full((b.y1 - b.y0, b.x1 - b.x0), i + 1, np.uint8) for i, b in enumerate(boxes)]
  pasted = faces.paste(labels, boxes, two.size)
  for i, b in enumerate(boxes):
    centre = ((b.y0 + b.y1) // 2, (b.x0 + b.x1) // 2)
    assert pasted[centre] == i + 1
  assert pasted[-1, 512] == 0  # outside both squares


def test_crop_beyond_the_photo_repeats_its_edges():
  arr = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
  out = np.asarray(faces.crop(Image.fromarray(arr), faces.Box(-2, -1, 4, 5)))
  assert out.shape == (6, 6, 3)
  assert (out[0, 0] == arr[0, 0]).all() and (out[1, 2] == arr[0, 0]).all() and (out[5, 5] == arr[3, 3]).all()
  pasted = faces.paste([np.ones((6, 6), np.uint8)], [faces.Box(-2, -1, 4, 5)], (6, 4))
  assert pasted.shape == (4, 6) and pasted[:, :4].all() and not pasted[:, 4:].any()


class _MarksBrightInputs(MaskPredictor):
  """A stand-in model: marks its whole input when the input's mean brightness is above 0.7."""
  image_size, num_classes, output = 8, 1, 'logits'

  def scores(self, images):
    return np.broadcast_to((images.mean((1, 2, 3)) - 0.7)[:, None, None, None], images.shape[:3] + (1,))


def test_a_face_mask_is_kept_only_if_the_wider_framings_find_it_too():
  assert faces.widened(faces.Box(10, 10, 20, 30), 1.5) == faces.Box(8, 5, 23, 35)
  arr = np.zeros((200, 400, 3), np.uint8)
  arr[50:150, 50:150] = 255  # bright in its own box and 1.15 times wider, not 1.3 times (0.59)
  arr[:, 250:] = 255  # bright in every framing
  photo = Image.fromarray(arr)
  small, always_bright = faces.Box(50, 50, 150, 150), faces.Box(275, 50, 375, 150)
  model = _MarksBrightInputs()
  labels = model.in_boxes([(photo, small, True), (photo, always_bright, True), (photo, small, False)])
  kept = [label.all() for label in labels]
  assert kept == [False, True, True]  # confirm=False (a --crop box or the whole photo) keeps what it finds
  assert model.in_boxes([(photo, small, True)], confirm_framings=(1.15,))[0].all()
  parsing = _MarksBrightInputs()
  parsing.num_classes = 2  # class 1 where bright: face parsing's label maps are not checked
  parsing.scores = lambda images: np.concatenate([np.zeros_like(model.scores(images)), model.scores(images)], -1)
  assert (parsing.in_boxes([(photo, small, True)])[0] == 1).all()


class _MarksCentreSquares(MaskPredictor):
  """A stand-in model: in a crop `w` pixels wide it marks a centred square of `sides[w]` pixels."""
  num_classes = 1

  def __init__(self, sides):
    self.sides = sides

  def __call__(self, pil_images):
    out = []
    for im in pil_images:
      label, side = np.zeros((im.height, im.width), np.uint8), self.sides[im.width]
      lo = (im.width - side) // 2
      label[lo:lo + side, lo:lo + side] = 1
      out.append(label)
    return out


def test_a_speck_does_not_count_as_found():
  """A detected face's mask is emptied when the part covers under MIN_FOUND_SHARE (0.1%) of the
  crop in its own framing or in any wider one; a face the check does not apply to keeps its
  speck. Boxes 100, 200 and 300 px wide: crops 100/115/130, 200/230/260 and 300/345/390."""
  assert predict.MIN_FOUND_SHARE == 0.001  # the docstrings and the model card quote 0.1%
  photo = Image.new('RGB', (1000, 1000))
  box = lambda side: faces.Box(500 - side // 2, 500 - side // 2, 500 + side // 2, 500 + side // 2)
  model = _MarksCentreSquares({100: 3, 115: 10, 130: 10,  # 0.09% in its own framing
                               200: 15, 230: 15, 260: 8,  # 0.56% there, 0.095% at 1.3 times
                               300: 11, 345: 11, 390: 13})  # 0.13%, 0.10%, 0.11%
  labels = model.in_boxes([(photo, box(100), True), (photo, box(200), True), (photo, box(300), True),
                           (photo, box(100), False)])
  assert [int(label.sum()) for label in labels] == [0, 0, 121, 9]


def test_predict_finds_faces_and_scores_against_references(trained_workdir, tmp_path, astronaut):
  photos, masks = tmp_path / 'photos', tmp_path / 'masks'
  photos.mkdir()
  masks.mkdir()
  astronaut.save(photos / 'astronaut.jpg')
  Image.new('RGB', (64, 48), (90, 120, 150)).save(photos / 'wall.png')  # no face in it
  Image.new('RGB', (40, 40), (10, 10, 10)).save(photos / 'unlabelled.png')
  truth = np.zeros((256, 256), np.uint8)
  truth[50:70, 90:130] = 255  # at half the photo's size: scored at this size
  Image.fromarray(truth).save(masks / 'astronaut.png')
  Image.fromarray(np.zeros((48, 64), np.uint8)).save(masks / 'wall.png')
  done = _run(f'--workdir={trained_workdir}', f'--input={photos}', f'--masks={masks}',
              f'--output={tmp_path / "out"}')
  assert done.returncode == 0, done.stderr[-3000:]
  assert 'no face found in' in done.stderr and 'wall.png' in done.stderr
  assert 'astronaut.jpg' not in done.stderr.split('no face found in')[1].split('\n')[0]
  assert 'Found 1 face(s)' in done.stdout
  # Quiet by default: no library INFO lines, no notices about the read-only checkpoint folder.
  assert not re.search(r'^I\d{4} ', done.stderr, re.M) and 'read only' not in done.stderr
  scores = json.load(open(tmp_path / 'out' / scoring.SCORES_JSON))
  assert scores['unscored'] == ['unlabelled'] and scores['photos_scored'] == 2
  # The summary equals the scores of the written masks, taken at the references' size.
  expected = scoring.Scorer(('eyeglasses',))
  for stem in ('astronaut', 'wall'):
    pred = (np.asarray(Image.open(tmp_path / 'out' / f'{stem}_mask.png')) > 127).astype(np.uint8)
    ref = (np.asarray(Image.open(masks / f'{stem}.png')) > 127).astype(np.uint8)
    expected.add(stem, pred, ref)
  want = expected.summary()
  for key in ('dice', 'precision', 'recall', 'false_alarm_rate', 'false_alarms'):
    assert scores[key] == want[key], key
  assert '| astronaut |' in (tmp_path / 'out' / scoring.SCORES_MD).read_text()
  # --faces=none predicts the whole photo and looks for no face.
  whole = _run(f'--workdir={trained_workdir}', f'--input={photos / "wall.png"}', '--faces=none',
               f'--output={tmp_path / "out2"}')
  assert whole.returncode == 0 and 'no face found' not in whole.stderr


@pytest.mark.parametrize('photo', ['astronaut', 'grace_hopper'])
def test_showcase_draws_each_model_on_a_public_domain_portrait(trained_workdir, tmp_path, photo):
  out = tmp_path / 'picture.png'
  args = ['-m', 'experiments.showcase', f'--photo={photo}', f'--workdirs={trained_workdir},{trained_workdir}',
          f'--output={out}', '--size=100']
  done = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300,
                        env=dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1'))
  assert done.returncode == 0, done.stderr[-3000:]
  with Image.open(out) as picture:
    assert picture.height == 118 and picture.width == 3 * 100  # the face's square: photo + two models
