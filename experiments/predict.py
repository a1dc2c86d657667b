"""Predicts masks for your own photos with a trained workdir or an exported model.

    python -m experiments.predict --workdir=runs/quick --input=photo.jpg [--output=DIR]
    python -m experiments.predict --workdir=runs/quick --input=photos/ --masks=photos_masks/
    python -m experiments.predict --workdir=runs/quick --from_test_split=8
    python -m experiments.predict --workdir=runs/quick --input=photo.jpg --crop=120,80,520,480
    python -m experiments.predict --model=runs/quick/export/onnx_float32/model.onnx --input=photos/

Faces are found in each photo (dlib's HOG detector, `--faces=auto`), each is framed as the
model was trained (CelebA-HQ's framing) and predicted, and the masks are pasted back at the
photo's size; a photo without a face found is predicted whole, with a warning. `--crop`
predicts one box of your choosing instead, `--faces=none` the whole photo as it is. For a binary
target, a detected face's mask is kept only if the part is found, on at least 0.1% of the crop,
in the face's framing and with the face framed 1.15 and 1.3 times wider (`--noconfirm` turns
this off; see `unet_flax.predict.CONFIRM_FRAMINGS` and `MIN_FOUND_SHARE`).

With --model, an exported model (experiments.export: .onnx, .tflite or a SavedModel folder,
with its model_card.json) predicts in its own runtime instead of the workdir's checkpoint, so
you can check an export on your own photos before shipping it.

With --masks, every photo that has a reference mask <stem>.png is scored (unet_flax.scoring):
Dice, IoU, precision, recall and the false-alarm rate on photos with an empty mask for a
binary target; per-class F1 and IoU and their mean for face parsing. The scores are written
to scores.json and scores.md beside the predictions.

Writes per image <stem>_mask.png (0/255 at the original size; for face parsing a colour
label map with its legend, plus <stem>_labels.png holding the class ids) and
<stem>_overlay.png (image with the mask tinted over it; beside the reference when there is
one). Every format Pillow reads is accepted, EXIF orientation is applied and 16-bit images
are scaled by their range. Unreadable files are reported by name and skipped; the inputs and
the output folder are checked before the model loads.
"""

import os
import sys

from absl import flags

from experiments import cli

flags.DEFINE_string('workdir', None, 'A training run directory, e.g. runs/quick.')
flags.DEFINE_string('model', None, 'Instead of --workdir: an exported model.onnx, model.tflite or SavedModel folder.')
flags.DEFINE_string('input', None, 'An image, or a folder of images.')
flags.DEFINE_string('masks', None, 'Folder of reference masks named <stem>.png: the predictions are '
                    'scored against them (scores.json and scores.md beside the predictions).')
flags.DEFINE_enum('mask_format', None, ['binary', 'labels'], 'What --masks holds: black/white masks of '
                  'the target (default for a binary target), or index label maps in CelebAMask-HQ\'s '
                  'class order (default for face parsing; for a binary target its parts are taken '
                  'from them).')
flags.DEFINE_enum('faces', 'auto', ['auto', 'none'], 'auto: find every face (dlib\'s HOG detector), '
                  'predict each framed as in training and paste the masks back; none: predict the '
                  'whole image as it is.')
# The factors and the share are unet_flax.predict's CONFIRM_FRAMINGS and MIN_FOUND_SHARE (not
# imported here: flags load before JAX).
flags.DEFINE_bool('confirm', True, 'For a binary target: keep a detected face\'s mask only if the part '
                  'is found, on at least 0.1% of the crop, in the face\'s framing and with the face '
                  'framed 1.15 and 1.3 times wider (seen smaller); this at least halves the false '
                  'alarms of models trained on the synthetic faces. --noconfirm: off.')
flags.DEFINE_string('output', None, 'Where to write; default <workdir>/predictions (with --model: '
                    'predictions/ beside the model).')
flags.DEFINE_string('checkpoint', 'best', 'best, latest or a step number.')
flags.DEFINE_integer('from_test_split', 0, 'Instead of --input: the first N test-split images.')
flags.DEFINE_integer('batch_size', 16, 'Images per forward pass.')
flags.DEFINE_list('crop', None, 'x0,y0,x1,y1 in pixels: predict inside this box of every input image '
                  'instead of finding faces (the model expects one face framed as in CelebA-HQ: centred, '
                  'about 56% of the width); the mask stays at the image size, empty outside the box.')
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


def _synthetic_note(target: str) -> str:
  """What a user of a model trained on the synthetic faces should know before trusting it on photos."""
  from unet_flax import real_photos
  measured = real_photos.summary(target)
  return ('note: this model was trained on the built-in synthetic (rendered) faces only; '
          + (f'{measured}. ' if measured else 'this target was not measured on real photographs. ')
          + 'See docs/benchmarks.md ("Real photographs"). For the best accuracy on photos, train on '
            'CelebAMask-HQ (--config.dataset.config=celebamask_hq --config.dataset.manual_dir=DIR) or your '
            'own folder layout (--config.dataset.config=folder).')


def _crop_box(values):
  from unet_flax.faces import Box
  try:
    x0, y0, x1, y1 = (int(v) for v in values)
  except ValueError:
    cli.fail(f'--crop={",".join(values)}: give four pixel coordinates x0,y0,x1,y1.')
  if not 0 <= x0 < x1 or not 0 <= y0 < y1:
    cli.fail(f'--crop={",".join(values)}: need 0 <= x0 < x1 and 0 <= y0 < y1.')
  return Box(x0, y0, x1, y1)


def _writable_folder(path: str) -> str:
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    cli.fail(f'--output={path} cannot be created ({e.strerror}); choose a writable folder.')
  if not os.path.isdir(path) or not os.access(path, os.W_OK):
    cli.fail(f'--output={path} is not a writable folder; choose another.')
  return path


def _reference(stem: str, predictor, mask_format: str):
  """The reference label of photo `stem` from --masks, or None when it has none (or it is unreadable)."""
  from unet_flax import scoring
  from unet_flax.data.checks import UNREADABLE
  path = os.path.join(FLAGS.masks, f'{stem}.png')
  if not os.path.exists(path):
    return None
  try:
    ids = scoring.label_ids(predictor.config.target) if predictor.num_classes == 1 else None
    return scoring.read_reference(path, mask_format=mask_format, num_classes=predictor.num_classes,
                                  label_ids=ids)
  except UNREADABLE as e:
    print(f'reference {path} left out: not a readable image ({e.__class__.__name__})', file=sys.stderr)
    return None


def main(argv):
  del argv
  import numpy as np
  from PIL import Image

  from unet_flax import faces, pictures, scoring
  from unet_flax.data.checks import UNREADABLE
  from unet_flax.predict import Predictor, load_image, test_examples
  from unet_flax.workdir import Workdir

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
    output = _writable_folder(FLAGS.output or Workdir(FLAGS.workdir).predictions_dir)
    predictor = Predictor(FLAGS.workdir, FLAGS.checkpoint)
  k = predictor.num_classes
  mask_format = FLAGS.mask_format or ('labels' if k > 1 else 'binary')
  if predictor.config.dataset.config.startswith('synthetic') and not FLAGS.from_test_split:
    print(_synthetic_note(predictor.config.target), file=sys.stderr)

  def save(stem, image, label, truth=None):
    write = lambda kind, picture: Image.fromarray(picture).save(os.path.join(output, f'{stem}_{kind}.png'))
    if k > 1:
      write('mask', pictures.with_legend(pictures.colourize(label, k), predictor.class_names))
      write('labels', label.astype(np.uint8))
    else:
      write('mask', (label * 255).astype(np.uint8))
    panels = [pictures.overlay(image, label, k)]
    if truth is not None:
      panels.append(pictures.overlay(image, scoring.at_size(truth, label.shape), k))
    write('overlay', np.concatenate(panels, axis=1))

  if FLAGS.from_test_split:
    images, labels = test_examples(predictor.config, FLAGS.from_test_split)
    for i, (image, label, pred) in enumerate(zip(images, labels, predictor.labels(images))):
      save(f'test_{i:03d}', (image * 255).astype(np.uint8), pred, label)
    print(f'Wrote {len(images)} test predictions (prediction | ground truth) to {output}')
    return
  scorer = scoring.Scorer(predictor.class_names) if FLAGS.masks else None
  skipped, unscored, faceless, found = [], [], [], 0
  for start in range(0, len(paths), FLAGS.batch_size):
    batch = []
    for path in paths[start:start + FLAGS.batch_size]:
      try:
        image = load_image(path)
      except UNREADABLE as e:
        skipped.append(path)
        print(f'skipped {path}: not a readable image ({e.__class__.__name__})', file=sys.stderr)
        continue
      if crop and (crop.x1 > image.width or crop.y1 > image.height):
        skipped.append(path)
        print(f'skipped {path}: --crop={",".join(FLAGS.crop)} lies outside its {image.width}x{image.height} '
              f'pixels', file=sys.stderr)
        continue
      boxes = [crop] if crop else faces.regions(image, FLAGS.faces)
      detected = boxes is not None and not crop  # faces the detector framed: these get the check
      if detected:
        found += len(boxes)
      elif boxes is None:
        if FLAGS.faces == 'auto':
          faceless.append(path)
          print(f'warning: no face found in {path}; predicting the whole photo (see --crop)',
                file=sys.stderr)
        boxes = [faces.Box(0, 0, image.width, image.height)]
      batch.append((path, image, boxes, detected))
    if not batch:
      continue
    crop_labels = iter(predictor.in_boxes([(im, box, detected and FLAGS.confirm)
                                           for _, im, boxes, detected in batch for box in boxes]))
    for path, im, boxes, _ in batch:
      label = faces.paste([next(crop_labels) for _ in boxes], boxes, im.size)
      stem = os.path.splitext(os.path.basename(path))[0]
      truth = _reference(stem, predictor, mask_format) if FLAGS.masks else None
      if scorer is not None:
        if truth is None:
          unscored.append(stem)
        else:
          scorer.add(stem, label, truth)
      save(stem, np.asarray(im), label, truth)
    print(f'[{min(start + FLAGS.batch_size, len(paths))}/{len(paths)}] images', flush=True)
  if FLAGS.faces == 'auto' and not crop:
    print(f'Found {found} face(s); {len(faceless)} photo(s) without a face were predicted whole.')
  print(f'Wrote {len(paths) - len(skipped)} prediction(s) to {output}; skipped {len(skipped)}.')
  if scorer is not None:
    _report_scores(scorer, output, unscored)


def _report_scores(scorer, output: str, unscored: list[str]) -> None:
  from unet_flax import scoring
  summary = scorer.summary()
  source = FLAGS.model or f'{FLAGS.workdir} (checkpoint {FLAGS.checkpoint})'
  scoring.write(output, summary, f'Scores of {source} on {FLAGS.masks}', unscored)
  if unscored:
    print(f'unscored (no reference in --masks): {", ".join(unscored)}', file=sys.stderr)
  fmt = lambda v: '-' if v is None else f'{v:.4f}'
  if 'dice' in summary:
    print(f'Scored {summary["photos_scored"]} photo(s): Dice {fmt(summary["dice"])}, IoU {fmt(summary["iou"])}, '
          f'precision {fmt(summary["precision"])}, recall {fmt(summary["recall"])}; false alarms on '
          f'{len(summary["false_alarms"])} of {summary["photos_without_target"]} photo(s) without the target.')
  else:
    print(f'Scored {summary["photos_scored"]} photo(s): mean F1 {fmt(summary["mean_f1"])} over '
          f'{len(summary["classes_labelled"])} parts (left and right merged: '
          f'{fmt(summary["left_right_merged"]["mean_f1"])}).')
  print(f'Scores in {os.path.join(output, scoring.SCORES_MD)} and {scoring.SCORES_JSON}.')


if __name__ == '__main__':
  cli.run(main)
