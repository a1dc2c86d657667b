"""Predicts masks for your own images with a trained workdir.

    python -m experiments.predict --workdir=runs/quick --input=photo.jpg [--output=DIR]
    python -m experiments.predict --workdir=runs/quick --input=photos/ --masks=photos_masks/
    python -m experiments.predict --workdir=runs/quick --from_test_split=8

Writes per image <stem>_mask.png (0/255 at the original size, or a colour label map for face
parsing) and <stem>_overlay.png (image with the mask tinted over it; beside the ground truth
when --masks holds <stem>.png). Unreadable files are reported by name and skipped.
"""

import os
import sys

from absl import app, flags

flags.DEFINE_string('workdir', None, 'A training run directory, e.g. runs/quick.')
flags.DEFINE_string('input', None, 'An image, or a folder of images.')
flags.DEFINE_string('masks', None, 'Optional folder of ground-truth masks named <stem>.png.')
flags.DEFINE_string('output', None, 'Where to write; default <workdir>/predictions.')
flags.DEFINE_string('checkpoint', 'best', 'best, latest or a step number.')
flags.DEFINE_integer('from_test_split', 0, 'Instead of --input: the first N test-split images.')
flags.DEFINE_integer('batch_size', 16, 'Images per forward pass.')
flags.mark_flags_as_required(['workdir'])
FLAGS = flags.FLAGS

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


def _inputs(path):
  if os.path.isdir(path):
    return [os.path.join(path, n) for n in sorted(os.listdir(path))
            if os.path.splitext(n)[1].lower() in IMAGE_EXTS or not os.path.splitext(n)[1]]
  if not os.path.exists(path):
    sys.exit(f'error: --input={path} does not exist.')
  return [path]


def main(argv):
  del argv
  import numpy as np
  from PIL import Image

  from unet_flax import pictures
  from unet_flax.checkpoints import CheckpointNotFoundError
  from unet_flax.predict import Predictor, predict_test_examples

  output = FLAGS.output or os.path.join(FLAGS.workdir, 'predictions')
  try:
    predictor = Predictor(FLAGS.workdir, FLAGS.checkpoint)
  except CheckpointNotFoundError as e:
    sys.exit(f'error: {e}')
  os.makedirs(output, exist_ok=True)
  k = predictor.num_classes

  def save(stem, image, label, truth=None):
    mask = pictures.colourize(label, k) if k > 1 else (label * 255).astype(np.uint8)
    Image.fromarray(mask).save(os.path.join(output, f'{stem}_mask.png'))
    panels = [pictures.overlay(image, label, k)]
    if truth is not None:
      panels.append(pictures.overlay(image, truth, k))
    Image.fromarray(np.concatenate(panels, axis=1)).save(os.path.join(output, f'{stem}_overlay.png'))

  if FLAGS.from_test_split:
    images, labels, preds, _ = predict_test_examples(predictor.config, FLAGS.workdir,
                                                     FLAGS.from_test_split, FLAGS.checkpoint)
    for i, (image, label, pred) in enumerate(zip(images, labels, preds)):
      save(f'test_{i:03d}', (image * 255).astype(np.uint8), pred, label)
    print(f'Wrote {len(images)} test predictions (prediction | ground truth) to {output}')
    return
  if not FLAGS.input:
    sys.exit('error: give --input=IMAGE_OR_FOLDER or --from_test_split=N.')
  paths, done, skipped = _inputs(FLAGS.input), 0, []
  for start in range(0, len(paths), FLAGS.batch_size):
    batch = []
    for path in paths[start:start + FLAGS.batch_size]:
      try:
        with Image.open(path) as im:
          batch.append((path, im.convert('RGB')))
      except (OSError, ValueError) as e:
        skipped.append(path)
        print(f'skipped {path}: not a readable image ({e.__class__.__name__})', file=sys.stderr)
    if not batch:
      continue
    for (path, im), label in zip(batch, predictor([im for _, im in batch])):
      stem = os.path.splitext(os.path.basename(path))[0]
      truth = None
      if FLAGS.masks and os.path.exists(os.path.join(FLAGS.masks, f'{stem}.png')):
        with Image.open(os.path.join(FLAGS.masks, f'{stem}.png')) as m:
          truth = (np.asarray(m.convert('L').resize(im.size, Image.Resampling.NEAREST)) > 127).astype(np.uint8)
      save(stem, np.asarray(im), label, truth)
      done += 1
    print(f'[{min(start + FLAGS.batch_size, len(paths))}/{len(paths)}] images', flush=True)
  print(f'Wrote {done} prediction(s) to {output}; skipped {len(skipped)}.')


if __name__ == '__main__':
  app.run(main)
