"""Predicts masks for your own images with a trained workdir.

    python -m experiments.predict --workdir=runs/quick --input=photo.jpg [--output=DIR]
    python -m experiments.predict --workdir=runs/quick --input=photos/ --masks=photos_masks/
    python -m experiments.predict --workdir=runs/quick --from_test_split=8
    python -m experiments.predict --workdir=runs/quick --input=photo.jpg --crop=120,80,520,480
    python -m experiments.predict --model=runs/quick/export/onnx_float32/model.onnx --input=photos/

With --model, an exported model (experiments.export: .onnx, .tflite or a SavedModel folder,
with its model_card.json) predicts in its own runtime instead of the workdir's checkpoint, so
you can check an export on your own photos before shipping it.

Writes per image <stem>_mask.png (0/255 at the original size; for face parsing a colour
label map with its legend, plus <stem>_labels.png holding the class ids) and <stem>_overlay.png (image with the mask tinted over it; beside the ground truth
when --masks holds <stem>.png). Every format Pillow reads is accepted, EXIF orientation
is applied and 16-bit images are scaled by their range. Unreadable files are reported
by name and skipped; the inputs and the output folder are checked before the model loads.
"""

import os
import sys

from absl import flags

from experiments import cli

flags.DEFINE_string('workdir', None, 'A training run directory, e.g. runs/quick.')
flags.DEFINE_string('model', None, 'Instead of --workdir: an exported model.onnx, model.tflite or SavedModel folder.')
flags.DEFINE_string('input', None, 'An image, or a folder of images.')
flags.DEFINE_string('masks', None, 'Optional folder of ground-truth masks named <stem>.png.')
flags.DEFINE_string('output', None, 'Where to write; default <workdir>/predictions (with --model: '
                    'predictions/ beside the model).')
flags.DEFINE_string('checkpoint', 'best', 'best, latest or a step number.')
flags.DEFINE_integer('from_test_split', 0, 'Instead of --input: the first N test-split images.')
flags.DEFINE_integer('batch_size', 16, 'Images per forward pass.')
flags.DEFINE_list('crop', None, 'x0,y0,x1,y1 in pixels: predict inside this box of every input image (the '
                  'model expects the face framed as in CelebA-HQ: centred, about 60% of the width); the '
                  'mask stays at the image size, empty outside the box.')
flags.mark_flags_as_mutual_exclusive(['workdir', 'model'], required=True)
FLAGS = flags.FLAGS



def _inputs(path: str) -> list[str]:
  """The images to predict: the file, or the folder's files with an extension Pillow reads
  (hidden and AppleDouble `._` files left out)."""
  from unet_flax.data.checks import image_files
  if not os.path.exists(path):
    cli.fail(f'--input={path} does not exist; give an image file or a folder of images.')
  if not os.path.isdir(path):
    return [path]
  paths = image_files(path)
  if not paths:
    cli.fail(f'--input={path} holds no image files (any format Pillow reads: .jpg, .png, .webp, '
             f'.tiff, .gif, ...).')
  return paths


SYNTHETIC_NOTE = (
    'note: this model was trained on the built-in synthetic (drawn) faces. It demonstrates the '
    'pipeline and does not transfer to photographs; for photos train on CelebAMask-HQ '
    '(--config.dataset.config=celebamask_hq --config.dataset.manual_dir=DIR) or your own folder '
    'layout (--config.dataset.config=folder). Models expect the face framed as in CelebA-HQ: centred, '
    'about 60% of the image width (see --crop).')


def _crop_box(values) -> tuple[int, int, int, int]:
  try:
    x0, y0, x1, y1 = (int(v) for v in values)
  except ValueError:
    cli.fail(f'--crop={",".join(values)}: give four pixel coordinates x0,y0,x1,y1.')
  if not 0 <= x0 < x1 or not 0 <= y0 < y1:
    cli.fail(f'--crop={",".join(values)}: need 0 <= x0 < x1 and 0 <= y0 < y1.')
  return x0, y0, x1, y1


def _paste(label, size, box):
  """A label predicted inside `box`, placed in an empty label of the whole image's `size`."""
  import numpy as np
  full = np.zeros((size[1], size[0]), label.dtype)
  full[box[1]:box[3], box[0]:box[2]] = label
  return full


def _writable_folder(path: str) -> str:
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    cli.fail(f'--output={path} cannot be created ({e.strerror}); choose a writable folder.')
  if not os.path.isdir(path) or not os.access(path, os.W_OK):
    cli.fail(f'--output={path} is not a writable folder; choose another.')
  return path


def main(argv):
  del argv
  import numpy as np
  from PIL import Image

  from unet_flax import pictures
  from unet_flax.data.checks import UNREADABLE
  from unet_flax.predict import Predictor, load_image, predict_test_examples

  if not FLAGS.from_test_split and not FLAGS.input:
    cli.fail('give --input=IMAGE_OR_FOLDER or --from_test_split=N.')
  if FLAGS.batch_size < 1:
    cli.fail(f'--batch_size={FLAGS.batch_size} must be at least 1.')
  if FLAGS.masks and not os.path.isdir(FLAGS.masks):
    cli.fail(f'--masks={FLAGS.masks} is not a folder.')
  crop = _crop_box(FLAGS.crop) if FLAGS.crop else None
  paths = [] if FLAGS.from_test_split else _inputs(FLAGS.input)
  if FLAGS.model:  # the file and its card are checked before anything is written
    from unet_flax.exported import ExportedPredictor, card_path
    predictor = ExportedPredictor(FLAGS.model)
    output = _writable_folder(FLAGS.output or os.path.join(os.path.dirname(card_path(FLAGS.model)), 'predictions'))
  else:
    output = _writable_folder(FLAGS.output or os.path.join(FLAGS.workdir, 'predictions'))
    predictor = Predictor(FLAGS.workdir, FLAGS.checkpoint)
  k = predictor.num_classes
  if predictor.config.dataset.config.startswith('synthetic') and not FLAGS.from_test_split:
    print(SYNTHETIC_NOTE, file=sys.stderr)

  def save(stem, image, label, truth=None):
    if k > 1:
      Image.fromarray(pictures.with_legend(pictures.colourize(label, k), predictor.class_names)).save(
          os.path.join(output, f'{stem}_mask.png'))
      Image.fromarray(label.astype(np.uint8)).save(os.path.join(output, f'{stem}_labels.png'))
    else:
      Image.fromarray((label * 255).astype(np.uint8)).save(os.path.join(output, f'{stem}_mask.png'))
    panels = [pictures.overlay(image, label, k)]
    if truth is not None:
      panels.append(pictures.overlay(image, truth, k))
    Image.fromarray(np.concatenate(panels, axis=1)).save(os.path.join(output, f'{stem}_overlay.png'))

  if FLAGS.from_test_split:
    images, labels, preds, _ = predict_test_examples(predictor, FLAGS.from_test_split)
    for i, (image, label, pred) in enumerate(zip(images, labels, preds)):
      save(f'test_{i:03d}', (image * 255).astype(np.uint8), pred, label)
    print(f'Wrote {len(images)} test predictions (prediction | ground truth) to {output}')
    return
  done, skipped = 0, []
  for start in range(0, len(paths), FLAGS.batch_size):
    batch = []
    for path in paths[start:start + FLAGS.batch_size]:
      try:
        image = load_image(path)
      except UNREADABLE as e:
        skipped.append(path)
        print(f'skipped {path}: not a readable image ({e.__class__.__name__})', file=sys.stderr)
        continue
      if crop and (crop[2] > image.width or crop[3] > image.height):
        skipped.append(path)
        print(f'skipped {path}: --crop={",".join(map(str, crop))} lies outside its {image.width}x{image.height} '
              f'pixels', file=sys.stderr)
        continue
      batch.append((path, image))
    if not batch:
      continue
    labels = predictor([im.crop(crop) if crop else im for _, im in batch])
    if crop:
      labels = [_paste(label, im.size, crop) for (_, im), label in zip(batch, labels)]
    for (path, im), label in zip(batch, labels):
      stem = os.path.splitext(os.path.basename(path))[0]
      truth = None
      if FLAGS.masks and os.path.exists(os.path.join(FLAGS.masks, f'{stem}.png')):
        try:
          with Image.open(os.path.join(FLAGS.masks, f'{stem}.png')) as m:
            truth = (np.asarray(m.convert('L').resize(im.size, Image.Resampling.NEAREST)) > 127).astype(np.uint8)
        except UNREADABLE as e:
          print(f'ground truth {stem}.png left out: not a readable image ({e.__class__.__name__})',
                file=sys.stderr)
      save(stem, np.asarray(im), label, truth)
      done += 1
    print(f'[{min(start + FLAGS.batch_size, len(paths))}/{len(paths)}] images', flush=True)
  print(f'Wrote {done} prediction(s) to {output}; skipped {len(skipped)}.')


if __name__ == '__main__':
  cli.run(main)
