"""Restoring a trained workdir and predicting masks, for images of any size and mode."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image, ImageOps

from unet_flax import checkpoints, configuration, faces, steps
from unet_flax import workdir as workdir_lib
from unet_flax.data import parts as parts_lib

# A binary mask of a detected face is kept only if the part is also found (on MIN_FOUND_SHARE of
# the crop) with the face framed this many times wider (seen smaller). Trained on rendered
# faces, a model's false glasses on real faces may come and go with the face's size, true glasses
# stay: over 21 eyeglasses trainings on renderers 2.0-2.1 this halved the false alarms on real
# glasses-free photos and kept the real glasses photo; renderer 2.3.0's models mark fewer faces,
# more steadily, and it takes 2 of 7 and 5 of 9 away (docs/benchmarks.md, "Real photographs").
CONFIRM_FRAMINGS = (1.15, 1.3)
# In that check a part counts as found in a framing only if it covers this share of the crop: a
# speck is not a pair of glasses (rendered pairs cover 1.8% of a face's crop or more, 1% seen
# 1.3 times wider) and a few false glasses survived the check as specks at one framing.
MIN_FOUND_SHARE = 0.001


def load_image(path: str) -> Image.Image:
  """Any image Pillow reads as 8-bit RGB, the way a viewer shows it: EXIF orientation applied,
  16-bit and 32-bit integer and float images scaled by their real range rather than clipped.
  Raises one of `unet_flax.data.checks.UNREADABLE` for a file that is not a readable image."""
  with Image.open(path) as img:
    img = ImageOps.exif_transpose(img)
    if img.mode.startswith('I;16'):
      img = Image.fromarray((np.asarray(img, np.float64) / 65535 * 255).round().astype(np.uint8))
    elif img.mode in ('I', 'F'):
      arr = np.asarray(img, np.float64)
      lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
      if lo >= 0 and hi <= 1 and img.mode == 'F':
        arr = arr * 255
      elif lo < 0 or hi > 255:
        arr = (arr - lo) / max(hi - lo, 1e-12) * 255
      img = Image.fromarray(np.nan_to_num(arr).round().clip(0, 255).astype(np.uint8))
    return img.convert('RGB')


def load_config(workdir: str | os.PathLike) -> ml_collections.ConfigDict:
  """The config a workdir recorded, upgraded to every field of today's configs."""
  run = workdir_lib.Workdir(workdir)
  path = run.config_file
  if not os.path.exists(path):
    raise checkpoints.CheckpointNotFoundError(
        f'{path} not found: --workdir must be a training run directory (e.g. runs/quick).')
  return configuration.upgrade(run.read_config())


def model_input(pil_images: list[Image.Image], size: int) -> np.ndarray:
  """[N, size, size, 3] float32 in [0, 1]: what the network (and every export of it) takes."""
  return np.stack([np.asarray(im.convert('RGB').resize((size, size), Image.Resampling.LANCZOS),
                              np.float32) / 255 for im in pil_images])


def labels_from_scores(scores: np.ndarray, output: str = 'logits') -> np.ndarray:
  """[N, H, W] uint8 label maps from [N, H, W, K] scores: a binary target is on where its logit
  is above 0 (its probability above 0.5); face parsing takes the argmax over classes."""
  if scores.shape[-1] == 1:
    return (scores[..., 0] > (0.5 if output == 'probabilities' else 0)).astype(np.uint8)
  return np.argmax(scores, -1).astype(np.uint8)


class MaskPredictor:
  """Label maps for PIL images of any size, from a network at a fixed square input size.

  Subclasses set `image_size`, `num_classes`, `class_names`, `output` ('logits' or
  'probabilities') and `config`, and define `scores` ([N, S, S, 3] float images in [0, 1]
  -> [N, S, S, K] scores of kind `output`)."""

  output = 'logits'

  def scores(self, images: np.ndarray) -> np.ndarray:
    raise NotImplementedError

  def labels(self, images: np.ndarray) -> np.ndarray:
    return labels_from_scores(self.scores(images), self.output)

  def __call__(self, pil_images: list[Image.Image]) -> list[np.ndarray]:
    """Label maps (uint8, at each image's original size) for PIL images of any mode."""
    scores = self.scores(model_input(pil_images, self.image_size))
    out = []
    for im, sc in zip(pil_images, scores):
      if self.num_classes == 1:  # upsample the probability, then threshold: smooth edges
        prob = sc[..., 0] if self.output == 'probabilities' else 1 / (1 + np.exp(-sc[..., 0]))
        prob = Image.fromarray(prob.astype(np.float32), mode='F')
        out.append((np.asarray(prob.resize(im.size, Image.Resampling.BILINEAR)) > 0.5).astype(np.uint8))
      else:
        label = Image.fromarray(np.argmax(sc, -1).astype(np.uint8))
        out.append(np.asarray(label.resize(im.size, Image.Resampling.NEAREST)))
    return out

  def in_boxes(self, crops: list[tuple[Image.Image, faces.Box, bool]],
               confirm_framings: tuple[float, ...] = CONFIRM_FRAMINGS) -> list[np.ndarray]:
    """Label maps of the photo inside each (photo, box, confirm), each at its box's size. For a
    binary target, the mask of a box with `confirm` set is emptied unless the part is found,
    covering at least MIN_FOUND_SHARE of the crop, in the box and in the box widened by each of
    `confirm_framings`."""
    labels = self([faces.crop(image, box) for image, box, _ in crops])
    if self.num_classes > 1:
      return labels

    def keep_found(indices, masks):
      """Empties labels[i] where its part is not found in `masks` (one per index); the rest."""
      kept = []
      for i, mask in zip(indices, masks):
        if mask.mean() >= MIN_FOUND_SHARE:
          kept.append(i)
        else:
          labels[i] = np.zeros_like(labels[i])
      return kept

    checked = [i for i, (_, _, confirm) in enumerate(crops) if confirm]
    still_found = keep_found(checked, [labels[i] for i in checked])
    for factor in confirm_framings:
      if not still_found:
        break
      wider = self([faces.crop(crops[i][0], faces.widened(crops[i][1], factor)) for i in still_found])
      still_found = keep_found(still_found, wider)
    return labels


class Predictor(MaskPredictor):
  """A model restored from a training workdir's checkpoint; scores are logits."""

  def __init__(self, workdir: str | os.PathLike, checkpoint: str = 'best', config=None):
    self.config = config or load_config(workdir)
    self.image_size = self.config.model.image_size
    self.num_classes = parts_lib.num_classes(self.config.target)
    self.class_names = parts_lib.class_names(self.config.target, parts_lib.CELEBAMASK_HQ_PARTS)
    with checkpoints.Manager(workdir, self.config, read_only=True) as manager:
      manager.resolve(checkpoint)  # a missing checkpoint is reported before the model is built
      template = steps.create_state(jax.random.key(0), self.config, self.num_classes,
                                    max(self.config.num_train_steps, 1))
      state, _ = manager.restore(template, checkpoint)
    self.state = steps.inference_state(state)
    self.step = int(self.state.step)

  def scores(self, images: np.ndarray) -> np.ndarray:
    """[N, S, S, 3] float images in [0, 1] -> logits at the model's input size."""
    # Padded to a power of two, so that the jitted step compiles for a few batch sizes, not for
    # every count of faces (inference normalises each image alone: the padding changes nothing).
    n = len(images)
    padded = np.zeros((1 << max(n - 1, 0).bit_length(),) + images.shape[1:], np.float32)
    padded[:n] = images
    return np.asarray(steps.predict_step(self.state, jnp.asarray(padded), image_size=self.image_size))[:n]


def test_examples(config, count: int) -> tuple[np.ndarray, np.ndarray]:
  """The first `count` test examples of config's dataset as (float images, labels), at model size."""
  from unet_flax.data import dataset as dataset_lib
  from unet_flax.data import pipeline
  split = pipeline.open_split(dataset_lib.make_builder(config.dataset), 'test')
  target = parts_lib.TargetMaker.from_config(config, split.part_names)
  return pipeline.examples_at_model_size(split, target, count, config.model.image_size)
