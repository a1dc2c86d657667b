"""Turns a folder of face photos into an eyes dataset, with eye masks from face landmarks.

    python -m experiments.landmark_masks --input=faces/ --output=eyes_dataset/ \
        [--model=~/.cache/unet_flax/face_landmarker.task] [--seed=0] [--split=0.8,0.1,0.1]
    python -m experiments.main --config=configs/eyes.py --config.dataset.config=folder_eyes \
        --config.dataset.manual_dir=eyes_dataset/

Needs MediaPipe (`pip install mediapipe`) and its Face Landmarker model, a separate file
that is never downloaded at run time: get `face_landmarker.task` from the Models section
of https://ai.google.dev/edge/mediapipe/solutions/vision/face_landmarker and put it at
--model. Writes the `folder` layout the dataset builder reads (its `folder_eyes` config):
<output>/{train,val,test}/images/<stem>.png and masks/<stem>.png (0/255, both eyes), the
split chosen by a seeded hash of the file name, so adding photos never moves old ones.
Faces where no landmarks are found are listed by name and left out.
"""

from __future__ import annotations

import hashlib
import os
import sys

import numpy as np
from absl import flags

from experiments import cli
from unet_flax.runtime import CACHE_DIR

DEFAULT_MODEL = os.path.join(CACHE_DIR, 'face_landmarker.task')
MODEL_PAGE = 'https://ai.google.dev/edge/mediapipe/solutions/vision/face_landmarker'
flags.DEFINE_string('input', None, 'A folder of face photos (any format Pillow reads).')
flags.DEFINE_string('output', None, 'Where to write train/, val/ and test/.')
flags.DEFINE_string('model', DEFAULT_MODEL, 'MediaPipe face_landmarker.task.')
flags.DEFINE_integer('seed', 0, 'Seed of the file-name hash that picks each photo\'s split.')
flags.DEFINE_list('split', ['0.8', '0.1', '0.1'], 'Fractions for train, val and test.')
flags.mark_flags_as_required(['input', 'output'])
FLAGS = flags.FLAGS
SPLITS = ('train', 'val', 'test')


def split_of(name: str, seed: int, fractions) -> str:
  """A split for a file name: stable under adding or removing other files."""
  u = int.from_bytes(hashlib.sha256(f'{seed}:{name}'.encode()).digest()[:8], 'big') / 2 ** 64
  edges = np.cumsum(fractions) / np.sum(fractions)
  return SPLITS[int(np.searchsorted(edges, u, side='right'))]


def mediapipe_landmarker(model_path: str):
  """image (uint8 RGB) -> [478, 3] normalised landmarks of the first face, or None."""
  try:
    import mediapipe as mp
  except ImportError:
    cli.fail('experiments.landmark_masks needs MediaPipe: pip install mediapipe; and its model file '
             f'face_landmarker.task from {MODEL_PAGE}, put at --model (default {DEFAULT_MODEL}).')
  if not os.path.isfile(model_path):
    cli.fail(f'--model={model_path} not found: download face_landmarker.task from the Models section of '
             f'{MODEL_PAGE} and put it there (or pass --model=PATH). Nothing is downloaded at run time.')
  options = mp.tasks.vision.FaceLandmarkerOptions(
      base_options=mp.tasks.BaseOptions(model_asset_path=model_path), num_faces=1)
  detector = mp.tasks.vision.FaceLandmarker.create_from_options(options)

  def landmarks(rgb: np.ndarray):
    result = detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)))
    if not result.face_landmarks:
      return None
    return np.array([[p.x, p.y, p.z] for p in result.face_landmarks[0]])

  return landmarks


def write_dataset(paths, output: str, landmarks_fn, seed: int = 0, fractions=(0.8, 0.1, 0.1)) -> dict:
  """Writes the folder layout; returns {'written': {split: count}, 'no_face': [paths], 'unreadable': [...]}."""
  from PIL import Image

  from unet_flax.data import landmark_masks
  from unet_flax.data.checks import UNREADABLE
  from unet_flax.predict import load_image
  for split in SPLITS:
    for sub in ('images', 'masks'):
      os.makedirs(os.path.join(output, split, sub), exist_ok=True)
  report = {'written': dict.fromkeys(SPLITS, 0), 'no_face': [], 'unreadable': []}
  for path in paths:
    try:
      rgb = np.asarray(load_image(path))
    except UNREADABLE:
      report['unreadable'].append(path)
      continue
    points = landmarks_fn(rgb)
    if points is None:
      report['no_face'].append(path)
      continue
    masks = landmark_masks.eye_masks(points, rgb.shape[1], rgb.shape[0])
    eyes = (masks['l_eye'] | masks['r_eye']) * 255
    name = os.path.basename(path)
    stem, split = os.path.splitext(name)[0], split_of(name, seed, fractions)
    Image.fromarray(rgb).save(os.path.join(output, split, 'images', f'{stem}.png'))
    Image.fromarray(eyes.astype(np.uint8)).save(os.path.join(output, split, 'masks', f'{stem}.png'))
    report['written'][split] += 1
  return report


def main(argv):
  del argv
  from unet_flax.data.checks import image_files
  if not os.path.isdir(FLAGS.input):
    cli.fail(f'--input={FLAGS.input} is not a folder of face photos.')
  try:
    fractions = [float(f) for f in FLAGS.split]
  except ValueError:
    cli.fail(f'--split={",".join(FLAGS.split)}: give three fractions, e.g. 0.8,0.1,0.1.')
  if len(fractions) != 3 or min(fractions) < 0 or sum(fractions) <= 0:
    cli.fail(f'--split={",".join(FLAGS.split)}: give three non-negative fractions for train, val and test.')
  paths = image_files(FLAGS.input)
  stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
  clashes = sorted({s for s in stems if stems.count(s) > 1})
  if clashes:
    cli.fail(f'--input={FLAGS.input}: several files share the stem(s) {clashes[:10]}; the dataset pairs by stem.')
  if not paths:
    cli.fail(f'--input={FLAGS.input} holds no images.')
  report = write_dataset(paths, FLAGS.output, mediapipe_landmarker(os.path.expanduser(FLAGS.model)),
                         FLAGS.seed, fractions)
  for kind, what in (('no_face', 'no face landmarks found'), ('unreadable', 'not a readable image')):
    for path in report[kind]:
      print(f'left out {path}: {what}', file=sys.stderr)
  print(f'Wrote {report["written"]} image/mask pairs to {FLAGS.output} (left out {len(report["no_face"])} '
        f'without a face, {len(report["unreadable"])} unreadable). Train on it with '
        f'--config.dataset.config=folder_eyes --config.dataset.manual_dir={FLAGS.output}')


if __name__ == '__main__':
  cli.run(main)
