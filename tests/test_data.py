"""The face_segmentation dataset (all three sources) and the Grain pipeline."""

import logging
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from tests.helpers import CELEBA_ROWS, EXPECTED_SPLITS, dataset_config, write_celebamask_tree, write_folder_tree
from unet_flax import augment, errors
from unet_flax.data import bitplanes, celebamask_hq, pipeline, synthetic
from unet_flax.data import dataset as dataset_lib
from unet_flax.data import parts as parts_lib
from unet_flax.data.render import canvas
from unet_flax.data.render import glasses as glasses_lib
from unet_flax.data.render.face import Draws
from unet_flax.errors import DatasetLayoutError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _ids(builder, split):
  return {r['id'].decode() for r in builder.as_data_source(split)}


def test_celebamask_split_assignment_follows_celeba_partition(celeba_builder):
  for split, ids in EXPECTED_SPLITS.items():
    assert _ids(celeba_builder, split) == ids


def test_celebamask_masks_resized_nearest_and_binary(celeba_builder):
  records = {r['id'].decode(): r for s in ('train', 'validation', 'test')
             for r in celeba_builder.as_data_source(s)}
  names = celeba_builder.info.metadata['part_names']
  assert tuple(names) == parts_lib.CELEBAMASK_HQ_PARTS
  for idx, _ in CELEBA_ROWS:
    parts = records[str(idx)]['parts']
    assert parts.shape == (256, 256, 18) and set(np.unique(parts)) <= {0, 1}
    for channel in range(18):
      expected = np.zeros((32, 32), np.uint8)
      if (idx + channel) % 3:
        expected[channel:channel + 8, 2:2 + 4 + idx % 5] = 1
      # 32 -> 256 nearest neighbour is an exact 8x block upsampling.
      np.testing.assert_array_equal(parts[..., channel], expected.repeat(8, 0).repeat(8, 1))


def test_celebamask_missing_files_are_named(tmp_path):
  root = tmp_path / 'dl'
  write_celebamask_tree(str(root), rows=CELEBA_ROWS[:2])
  os.remove(root / celebamask_hq.IMG_DIR / '1999.jpg')
  with pytest.raises(DatasetLayoutError, match='1999.jpg'):
    dataset_lib.prepare(dataset_config('celebamask_hq', tmp_path / 'd', root))
  os.remove(root / celebamask_hq.MAPPING_FILE)
  with pytest.raises(DatasetLayoutError, match=celebamask_hq.MAPPING_FILE):
    dataset_lib.prepare(dataset_config('celebamask_hq', tmp_path / 'd', root))
  assert not (tmp_path / 'd' / 'face_segmentation' / 'celebamask_hq' / '1.0.0').exists()


def test_celebamask_missing_anno_folder_is_named(tmp_path):
  root = tmp_path / 'dl'
  write_celebamask_tree(str(root), rows=CELEBA_ROWS[:1])
  os.rename(root / celebamask_hq.ANNO_DIR, root / 'elsewhere')
  with pytest.raises(DatasetLayoutError, match=celebamask_hq.ANNO_DIR):
    dataset_lib.prepare(dataset_config('celebamask_hq', tmp_path / 'd', root))


def test_missing_manual_dir_is_a_clear_error(tmp_path):
  with pytest.raises(DatasetLayoutError, match='manual_dir'):
    dataset_lib.prepare(dataset_config('celebamask_hq', tmp_path))


def _write_folder_dataset(root, modes=('RGB', 'L', 'RGBA', 'P'), jpeg_masks=False):
  for split in ('train', 'val', 'test'):
    os.makedirs(root / split / 'images')
    os.makedirs(root / split / 'masks')
    for i, mode in enumerate(modes):
      img = Image.fromarray(np.full((40, 30, 3), 60 * i, np.uint8)).convert(mode)
      img.save(root / split / 'images' / f'{split}_{i}.png')
      mask = np.zeros((40, 30), np.uint8)
      mask[10:20, 5:25] = 255
      ext = 'jpg' if jpeg_masks else 'png'
      Image.fromarray(mask).save(root / split / 'masks' / f'{split}_{i}.{ext}', quality=50)


def test_folder_dataset_builds_any_image_mode(tmp_path):
  _write_folder_dataset(tmp_path / 'dl')
  builder = dataset_lib.prepare(dataset_config('folder', tmp_path / 'd', tmp_path / 'dl'))
  assert builder.info.metadata['part_names'] == ['eye_g']
  records = list(builder.as_data_source('validation'))
  assert {r['id'].decode() for r in records} == {f'val_{i}' for i in range(4)}
  for r in records:
    assert r['image'].shape == (256, 256, 3) and r['parts'].shape == (256, 256, 1)
    assert set(np.unique(r['parts'])) == {0, 1}


def test_folder_jpeg_masks_thresholded_with_one_warning(tmp_path, caplog):
  _write_folder_dataset(tmp_path / 'dl', modes=('RGB', 'RGB'), jpeg_masks=True)
  with caplog.at_level(logging.WARNING):
    builder = dataset_lib.prepare(dataset_config('folder', tmp_path / 'd', tmp_path / 'dl'))
  warnings = [r.message for r in caplog.records if 'thresholded at 128' in r.getMessage()]
  assert len(warnings) == 3  # one per split
  assert '2 mask(s)' in caplog.text
  assert set(np.unique(builder.as_data_source('train')[0]['parts'])) == {0, 1}


def test_folder_unpaired_files_are_listed(tmp_path):
  _write_folder_dataset(tmp_path / 'dl', modes=('RGB',))
  for i in range(12):
    Image.new('RGB', (8, 8)).save(tmp_path / 'dl' / 'train' / 'images' / f'lonely_{i:02d}.png')
  with pytest.raises(DatasetLayoutError, match=r"12 unpaired file\(s\).*lonely_00.*lonely_09'\]"):
    dataset_lib.prepare(dataset_config('folder', tmp_path / 'd', tmp_path / 'dl'))
  assert not (tmp_path / 'd' / 'face_segmentation' / 'folder' / '1.0.0').exists()


def test_synthetic_faces_are_a_pure_function_of_seed():
  a_img, a_masks = synthetic.render_face(3, 11, 128)
  b_img, b_masks = synthetic.render_face(3, 11, 128)
  c_img, _ = synthetic.render_face(4, 11, 128)
  np.testing.assert_array_equal(a_img, b_img)
  assert a_masks.keys() == b_masks.keys()
  assert all(np.array_equal(a_masks[k], b_masks[k]) for k in a_masks)
  assert not np.array_equal(a_img, c_img)


@pytest.fixture(scope='module')
def rendered_faces():
  return [synthetic.render_face(0, i, 128) for i in range(60)]


def test_synthetic_share_of_glasses_and_parts(rendered_faces):
  faces = [masks for _, masks in rendered_faces]
  share = np.mean(['eye_g' in m for m in faces])
  assert abs(share - synthetic.GLASSES_FRACTION) < 0.2
  for masks in faces:
    assert {'skin', 'nose', 'u_lip', 'l_lip'} <= set(masks)
  assert np.mean([{'l_eye', 'r_eye'} <= set(m) for m in faces]) > 0.8  # sunglasses hide them
  assert np.mean(['cloth' in m for m in faces]) >= 0.9  # shoulders may leave a tight crop
  assert np.mean(['mouth' in m for m in faces]) > 0.4  # smiles show teeth


def test_synthetic_left_parts_are_on_the_image_right_as_in_celebamask_hq(rendered_faces):
  """CelebAMask-HQ's l_eye, l_brow and l_ear are the subject's left: the image's right."""
  for _, masks in rendered_faces:
    for left, right in parts_lib.LEFT_RIGHT_PAIRS:
      if left in masks and right in masks and masks[left].sum() > 3 and masks[right].sum() > 3:
        assert np.nonzero(masks[left])[1].mean() > np.nonzero(masks[right])[1].mean(), left


def test_synthetic_masks_are_what_the_picture_shows(rendered_faces):
  """Painted in CelebAMask-HQ's order, each part keeps its pixels: a part's mask holds only
  what is visible of it, so nothing painted later (neck, cloth, hair) covers the lips, and the
  neck hides behind the face, not over it."""
  order = parts_lib.CELEBAMASK_HQ_PARTS
  kept = {p: [0, 0] for p in ('u_lip', 'l_lip', 'neck')}
  for _, masks in rendered_faces:
    assert not (masks['skin'] & masks.get('neck', np.zeros_like(masks['skin']))).any()
    label = np.zeros(masks['skin'].shape, np.int32)
    for i, name in enumerate(order):
      if name in masks:
        label[masks[name]] = i + 1
    for p in kept:
      if p in masks:
        kept[p][0] += int((label == order.index(p) + 1).sum())
        kept[p][1] += int(masks[p].sum())
  for p, (painted, drawn) in kept.items():
    assert painted >= 0.97 * drawn, p


def test_lines_are_opaque_across_their_width():
  """A frame, lash or strand drawn 4 pixels wide covers those pixels (mask threshold 0.5), and
  only the feather softens its edges."""
  line = canvas.line_alpha((32, 32), [np.array([[2.0, 16.0], [30.0, 16.0]])], 4.0, 0.35)
  assert line[16, 16] > 0.99
  assert 4 <= (line[:, 16] >= 0.5).sum() <= 6
  assert (line[:, 16] > 0.05).sum() <= 8


def test_synthetic_plastic_frames_are_in_the_glasses_mask(rendered_faces):
  """A plastic frame is labelled with its lenses, as in CelebAMask-HQ: the bridge joins both
  lenses into one piece of the eye_g mask."""
  one_piece = []
  for i, (_, masks) in enumerate(rendered_faces):
    if i % 2 and not glasses_lib.Glasses.sample(Draws(0, i // 2)['glasses']).metal:
      pieces, _ = ndimage.label(masks['eye_g'], structure=np.ones((3, 3)))
      one_piece.append(np.bincount(pieces.ravel())[1:].max() / masks['eye_g'].sum() > 0.9)
  assert len(one_piece) >= 10 and np.mean(one_piece) >= 0.85, one_piece


def test_synthetic_glasses_are_the_size_of_real_frames(rendered_faces):
  """Lenses as sold (42-58 mm wide, a 14-22 mm bridge) cover far more than the eyes behind them:
  over the pairs, the glasses' mask is a median 8 or more times the area of the same face's bare
  eyes (renderer 2.2.0's lenses, which hugged the eyes, gave 5.6)."""
  ratios = []
  for (_, bare), (_, worn) in zip(rendered_faces[0::2], rendered_faces[1::2]):
    eyes = bare.get('l_eye', 0) | bare.get('r_eye', 0)
    if np.sum(eyes):
      ratios.append(worn['eye_g'].sum() / np.sum(eyes))
  assert len(ratios) >= 25 and np.median(ratios) >= 8, np.round(sorted(ratios), 1)


def test_synthetic_dataset_splits(synthetic_builder):
  splits = synthetic_builder.info.splits
  assert [splits[s].num_examples for s in ('train', 'validation', 'test')] == [24, 6, 5]
  eye_g = parts_lib.CELEBAMASK_HQ_PARTS.index('eye_g')
  assert any(r['parts'][..., eye_g].any() for r in synthetic_builder.as_data_source('train'))


def test_target_maker_union_and_painting():
  names = parts_lib.CELEBAMASK_HQ_PARTS
  parts = np.zeros((2, 2, 18), np.uint8)
  parts[0, 0, names.index('skin')] = parts[0, 0, names.index('eye_g')] = 1
  parts[0, 0, names.index('l_eye')] = 1
  parts[1, 1, names.index('u_lip')] = 1
  np.testing.assert_array_equal(parts_lib.TargetMaker('eyeglasses', names)(parts), [[1, 0], [0, 0]])
  np.testing.assert_array_equal(parts_lib.TargetMaker('lips', names)(parts), [[0, 0], [0, 1]])
  label = parts_lib.TargetMaker('face_parsing', names)(parts)
  assert label[0, 0] == names.index('l_eye') + 1  # painted after skin and eye_g
  assert label[1, 1] == names.index('u_lip') + 1 and label[0, 1] == 0
  with pytest.raises(parts_lib.TargetError, match='wings'):
    parts_lib.TargetMaker('wings', names)


def test_auxiliary_target_is_the_training_labels_second_bit():
  """config.auxiliary_target: the training label is target + 2 * auxiliary, from packed planes as
  from parts; a flip keeps every value (both halves are symmetric unions)."""
  names = parts_lib.CELEBAMASK_HQ_PARTS
  parts = (np.random.default_rng(4).random((16, 16, 18)) < 0.3).astype(np.uint8)
  cfg = ml_collections.ConfigDict({'target': 'eyeglasses', 'painting_order': (), 'auxiliary_target': 'eyes'})
  maker = parts_lib.training_target(cfg, names)
  label = maker.from_planes(bitplanes.planes(bitplanes.pack(parts), 16, 18, maker.needed_planes))
  np.testing.assert_array_equal(label, maker(parts))
  assert set(np.unique(label).tolist()) == {0, 1, 2, 3}
  target, auxiliary = parts_lib.split_auxiliary(label)
  np.testing.assert_array_equal(target, parts_lib.TargetMaker('eyeglasses', names)(parts))
  np.testing.assert_array_equal(auxiliary, parts_lib.TargetMaker('eyes', names)(parts))
  np.testing.assert_array_equal(maker.mirror_label_map, np.arange(4))
  cfg.auxiliary_target = ''
  np.testing.assert_array_equal(parts_lib.training_target(cfg, names)(parts), target)


def _split(builder, name='train'):
  return pipeline.open_split(builder, name)


def _take(it, n):
  return [next(it) for _ in range(n)]


def test_train_batches_shape_deterministic_and_resumable(synthetic_builder):
  split = _split(synthetic_builder)
  maker = parts_lib.TargetMaker('eyeglasses', split.part_names)
  make = lambda seed: pipeline.train_iterator(split, maker, global_batch_size=8, seed=seed, threads=2)
  first = _take(make(0), 5)  # 5 batches of 8 from 24 examples: crosses two epoch boundaries
  assert first[0]['image'].shape == (jax.local_device_count(), 8 // jax.local_device_count(), 256, 256, 3)
  assert first[0]['image'].dtype == np.float32 and 0 <= first[0]['image'].min() <= first[0]['image'].max() <= 1
  for a, b in zip(first, _take(make(0), 5)):
    np.testing.assert_array_equal(a['image'], b['image'])
  assert not np.array_equal(first[0]['image'], next(make(1))['image'])
  it = make(0)
  _take(it, 2)
  state = it.get_state()
  resumed = make(0)
  resumed.set_state(state)
  for a, b in zip(first[2:], _take(resumed, 3)):
    np.testing.assert_array_equal(a['image'], b['image'])
    np.testing.assert_array_equal(a['label'], b['label'])


def test_eval_visits_every_example_once_with_padding(synthetic_builder):
  split = _split(synthetic_builder, 'test')  # 5 examples, batches of 4
  maker = parts_lib.TargetMaker('eyeglasses', split.part_names)
  batches = list(pipeline.eval_iterator(split, maker, global_batch_size=4, threads=2))
  assert len(batches) == 2
  valid = np.concatenate([b['valid'].reshape(-1) for b in batches])
  assert valid.tolist() == [True] * 5 + [False] * 3
  images = np.concatenate([b['image'].reshape((-1, 256, 256, 3)) for b in batches])[:5]
  expected = np.stack([np.asarray(r['image']) for r in split.source]) / 255
  np.testing.assert_allclose(images, expected, atol=1e-6)


def test_batch_size_not_divisible_by_devices_is_a_clear_error(synthetic_builder):
  split = _split(synthetic_builder)
  maker = parts_lib.TargetMaker('eyeglasses', split.part_names)
  with pytest.raises(errors.ConfigError, match='config.batch_size=6'):
    pipeline.train_iterator(split, maker, global_batch_size=6, seed=0)


def _augment_cfg(**kw):
  """config.augment with every augmentation off, then `kw`."""
  from configs import base
  cfg = base.get_config().augment
  cfg.update(dict(hflip=False, scale_range=(1.0, 1.0), rotation_degrees=0.0, brightness=0.0,
                  contrast=0.0, saturation=0.0), **kw)
  return cfg


def test_flip_swaps_left_and_right_parts():
  names = parts_lib.CELEBAMASK_HQ_PARTS
  maker = parts_lib.TargetMaker('face_parsing', names)
  label = np.zeros((1, 8, 8), np.uint8)
  label[0, 2, 1] = names.index('l_eye') + 1
  label[0, 5, 6] = names.index('r_brow') + 1
  image = np.zeros((1, 8, 8, 3), np.float32)
  image[0, 2, 1] = 1.0
  # Find a key whose draw flips (p = 0.5) and one that does not.
  outputs = [augment.augment(jax.random.key(s), jnp.asarray(image), jnp.asarray(label),
                             _augment_cfg(hflip=True), jnp.asarray(maker.mirror_label_map))
             for s in range(8)]
  flipped = [(np.asarray(i), np.asarray(l)) for i, l in outputs if np.asarray(l)[0, 2, 6] != 0]
  kept = [np.asarray(l) for _, l in outputs if np.asarray(l)[0, 2, 1] != 0]
  assert flipped and kept
  img, lab = flipped[0]
  assert lab[0, 2, 6] == names.index('r_eye') + 1 and lab[0, 5, 1] == names.index('l_brow') + 1
  assert np.count_nonzero(lab) == 2 and img[0, 2, 6, 0] == pytest.approx(1.0)
  np.testing.assert_array_equal(kept[0], label)


def test_geometric_augmentation_keeps_image_and_label_aligned():
  label = np.zeros((4, 32, 32), np.uint8)
  label[:, 8:20, 10:24] = 1
  image = np.repeat(label[..., None].astype(np.float32), 3, -1)
  cfg = _augment_cfg(hflip=True, scale_range=(0.8, 1.3), rotation_degrees=15.0)
  img, lab = augment.augment(jax.random.key(0), jnp.asarray(image), jnp.asarray(label), cfg,
                             jnp.array([0, 1]))
  img, lab = np.asarray(img), np.asarray(lab)
  assert not np.array_equal(lab, label)  # it did move
  # Where the bilinear image is clearly inside/outside the shape, the nearest label agrees.
  assert np.all(lab[img[..., 0] > 0.75] == 1) and np.all(lab[img[..., 0] < 0.25] == 0)


def test_binary_target_not_mirror_symmetric_is_reported():
  maker = parts_lib.TargetMaker('l_eye', parts_lib.CELEBAMASK_HQ_PARTS)
  assert not maker.flip_safe
  assert parts_lib.TargetMaker('eyes', parts_lib.CELEBAMASK_HQ_PARTS).flip_safe


@pytest.mark.parametrize('target', ['eyeglasses', 'eyes_lips', 'face_parsing', 'hair,hat'])
def test_targets_from_packed_planes_equal_targets_from_parts(target):
  parts = (np.random.default_rng(3).random((16, 16, 18)) < 0.3).astype(np.uint8)
  maker = parts_lib.TargetMaker(target, parts_lib.CELEBAMASK_HQ_PARTS)
  encoded = bitplanes.pack(parts)
  planes = bitplanes.planes(encoded, 16, 18, maker.needed_planes)
  np.testing.assert_array_equal(maker.from_planes(planes), maker(parts))
  np.testing.assert_array_equal(bitplanes.unpack(bitplanes.planes(encoded, 16, 18), 18), parts)


def test_bit_packed_feature_round_trips_and_rejects_non_binary_masks():
  from unet_flax.data.face_segmentation.face_segmentation_dataset_builder import BitPackedMasks
  parts = (np.random.default_rng(4).random((8, 8, 18)) < 0.4).astype(np.uint8)
  feature = BitPackedMasks(shape=(8, 8, 18))
  encoded = feature.encode_example(parts)
  np.testing.assert_array_equal(feature.decode_example_np(encoded), parts)
  with pytest.raises(ValueError, match='0/1'):
    feature.encode_example(parts * 3)


# --- eye masks from face landmarks ----------------------------------------------------------------

def _hand_made_landmarks(with_irises=False):
  """Face-mesh points in pixels: each eye contour a regular 16-gon of radius 20, the subject's
  left eye on the image's right (x = 150) as in an unmirrored photo; irises of radius 5."""
  from unet_flax.data import landmark_masks as lm
  points = np.zeros((lm.MESH_POINTS_WITH_IRISES if with_irises else lm.MESH_POINTS, 3))
  for ring, (cx, r) in ((lm.LEFT_EYE, (150, 20)), (lm.RIGHT_EYE, (50, 20)),
                        (lm.LEFT_IRIS, (150, 5)), (lm.RIGHT_IRIS, (50, 5))):
    if max(ring) < len(points):
      angles = np.arange(len(ring)) * 2 * np.pi / len(ring)
      points[list(ring), 0], points[list(ring), 1] = cx + r * np.cos(angles), 100 + r * np.sin(angles)
  return points


def test_eye_masks_fill_the_landmark_polygons_on_the_subjects_side():
  from unet_flax.data import landmark_masks as lm
  masks = lm.eye_masks(_hand_made_landmarks(with_irises=True), 200, 160, normalized=False)
  polygon_area = 0.5 * 16 * 20 ** 2 * np.sin(2 * np.pi / 16)  # 1224.6
  for name, cx in (('l_eye', 150), ('r_eye', 50)):
    ys, xs = np.nonzero(masks[name])
    assert abs(len(xs) - polygon_area) < 0.03 * polygon_area, (name, len(xs))
    assert abs(xs.mean() + 0.5 - cx) < 0.05 and abs(ys.mean() + 0.5 - 100) < 0.05  # pixel centres
  for name in ('l_iris', 'r_iris'):
    assert abs(masks[name].sum() - np.pi * 25) < 15 and not (masks[name] & ~masks[name[0] + '_eye']).any()
  normalized = _hand_made_landmarks() / [200, 160, 1]
  assert (lm.eye_masks(normalized, 200, 160)['l_eye'] == masks['l_eye']).all()
  with pytest.raises(ValueError, match='face-mesh'):
    lm.eye_masks(np.zeros((10, 2)), 200, 160)


def test_landmark_tool_writes_a_folder_eyes_dataset_the_builder_reads(tmp_path):
  from experiments import landmark_masks as tool
  photos = []
  for i in range(12):
    path = tmp_path / 'faces' / f'face{i:02d}.jpg'
    path.parent.mkdir(exist_ok=True)
    Image.fromarray(np.full((160, 200, 3), 20 * i, np.uint8)).save(path)
    photos.append(str(path))
  no_face = photos[3]
  report = tool.write_dataset(photos, str(tmp_path / 'eyes'),
                              lambda rgb: None if rgb[0, 0, 0] == 60 else _hand_made_landmarks() / [200, 160, 1])
  assert report['no_face'] == [no_face] and sum(report['written'].values()) == 11
  split_of = lambda p: tool.split_of(os.path.basename(p), 0, (0.8, 0.1, 0.1))
  assert all(split_of(p) == split_of(p) for p in photos)
  for split, count in report['written'].items():  # every split needs a pair for the builder
    if not count:
      name = f'extra_{split}'
      Image.fromarray(np.zeros((160, 200, 3), np.uint8)).save(tmp_path / 'eyes' / split / 'images' / f'{name}.png')
      Image.fromarray(np.zeros((160, 200), np.uint8)).save(tmp_path / 'eyes' / split / 'masks' / f'{name}.png')
  builder = dataset_lib.prepare(dataset_config('folder_eyes', tmp_path / 'tfds', tmp_path / 'eyes'))
  assert list(builder.info.metadata['part_names']) == ['eyes']
  split = pipeline.open_split(builder, 'train')
  target = parts_lib.TargetMaker('eyes', split.part_names)
  _, labels = split.examples(target, range(len(split)))
  assert labels.max() == 1 and 0.01 < labels.mean() < 0.2


def test_landmark_tool_without_mediapipe_or_its_model_says_what_to_get(tmp_path):
  (tmp_path / 'faces').mkdir()
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / 'faces' / 'a.jpg')
  done = subprocess.run([sys.executable, '-m', 'experiments.landmark_masks', f'--input={tmp_path / "faces"}',
                         f'--output={tmp_path / "out"}', f'--model={tmp_path / "nope.task"}'],
                        cwd=REPO, capture_output=True, text=True, timeout=120)
  assert done.returncode == 2 and 'Traceback' not in done.stderr
  assert 'face_landmarker.task' in done.stderr and not (tmp_path / 'out').exists()


def test_input_checks_report_progress_on_long_builds(tmp_path, monkeypatch, capsys):
  from unet_flax.data import checks
  write_folder_tree(tmp_path, n=3)
  train = tmp_path / 'train'
  examples = [(f'{i}', str(train / 'images' / f'{i}.jpg'), [str(train / 'masks' / f'{i}.png')]) for i in range(3)]
  monkeypatch.setattr(checks, 'PROGRESS_SECONDS', 0.0)  # a line per input instead of one per 30 s
  checks.preflight(examples, what='folder', image_size=32)
  lines = capsys.readouterr().out.splitlines()
  assert [l.split(' (')[0] for l in lines] == [f'folder: checked {i} of 3 inputs' for i in (1, 2, 3)]
