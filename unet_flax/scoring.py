"""Scores predicted masks against a folder of reference masks, photo by photo.

`experiments.predict --masks=DIR` uses this to measure any model (a workdir's checkpoint
or an exported file) on labelled photos. Counts are pooled over the folder, like the
evaluation's (a Dice over all pixels of all photos, not a mean of per-photo Dice):

* binary targets: Dice, IoU, precision and recall; and, for the photos whose reference
  mask is empty, the share on which any pixel was predicted (the false-alarm rate);
* face parsing: per-class F1 and IoU, and the mean F1 over the parts labelled in the
  folder, also with each left/right pair merged into one class.

Scores are taken at the reference masks' resolution: a prediction of another size is
resized to the mask by nearest neighbour.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from unet_flax.data import parts as parts_lib
from unet_flax.errors import UserError

SCORES_JSON = 'scores.json'
SCORES_MD = 'scores.md'


class MaskFileError(UserError):
  """A reference mask that cannot be used for scoring."""


def read_reference(path: str, *, mask_format: str, num_classes: int,
                   label_ids: Sequence[int] | None = None) -> np.ndarray:
  """The reference of one photo as a uint8 label: 0/1 for a binary target, a class id for face
  parsing. `mask_format` says what the file holds: 'binary' (black/white, on above 127) or
  'labels' (an index PNG with CelebAMask-HQ's class ids). A binary target read from label maps
  is the union of `label_ids`."""
  with Image.open(path) as img:
    if mask_format == 'binary':
      return (np.asarray(img.convert('L')) > 127).astype(np.uint8)
    if img.mode not in ('L', 'P', 'I', 'I;16'):
      raise MaskFileError(f'{path}: a label map must be an index PNG (mode L or P, one class id '
                          f'per pixel), not mode {img.mode}; or give --mask_format=binary.')
    labels = np.asarray(img)
  top = int(labels.max(initial=0))
  limit = len(parts_lib.CELEBAMASK_HQ_PARTS)
  if top > limit:
    raise MaskFileError(f'{path}: holds class id {top}; label maps use CelebAMask-HQ\'s ids 0..{limit}. '
                        f'Is it a black/white mask? Then give --mask_format=binary.')
  if num_classes > 1:
    return labels.astype(np.uint8)
  return np.isin(labels, np.asarray(label_ids)).astype(np.uint8)


def label_ids(target: str) -> tuple[int, ...]:
  """Class ids (in CelebAMask-HQ label maps) whose union is the binary `target`."""
  names = parts_lib.resolve_binary_parts(target, parts_lib.CELEBAMASK_HQ_PARTS)
  return tuple(parts_lib.CELEBAMASK_HQ_PARTS.index(n) + 1 for n in names)


def at_size(label: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
  """`label` resized to (H, W) `shape` by nearest neighbour (unchanged when it already fits)."""
  if label.shape == tuple(shape):
    return label
  return np.asarray(Image.fromarray(label).resize((shape[1], shape[0]), Image.Resampling.NEAREST))


def _confusion(pred: np.ndarray, truth: np.ndarray, k: int) -> np.ndarray:
  """[K, K] pixel counts, rows the reference class and columns the predicted one."""
  return np.bincount(truth.astype(np.int64).ravel() * k + pred.ravel(), minlength=k * k).reshape(k, k)


def _f1_iou(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  tp = np.diag(confusion).astype(np.float64)
  fp, fn = confusion.sum(0) - tp, confusion.sum(1) - tp
  with np.errstate(divide='ignore', invalid='ignore'):
    return 2 * tp / (2 * tp + fp + fn), tp / (tp + fp + fn)


def merged_left_right(class_names: Sequence[str]) -> tuple[tuple[str, ...], np.ndarray]:
  """Class names with each left/right pair as one class (`eye`, `brow`, `ear`), and the table
  from a class id to its merged id."""
  merged_of = {left: left[2:] for pair in parts_lib.LEFT_RIGHT_PAIRS for left in pair}
  merged = [merged_of.get(name, name) for name in class_names]
  names = tuple(dict.fromkeys(merged))  # in order of first appearance
  return names, np.asarray([names.index(name) for name in merged])


class Scorer:
  """Accumulates (prediction, reference) pairs, then summarises them."""

  def __init__(self, class_names: Sequence[str]):
    self.class_names = tuple(class_names)
    self.binary = len(self.class_names) == 1
    self.k = 2 if self.binary else len(self.class_names)
    self.total = np.zeros((self.k, self.k), np.int64)
    self.photos: list[dict] = []

  def add(self, name: str, pred: np.ndarray, truth: np.ndarray) -> None:
    """Scores one photo; `pred` is resized to `truth`'s shape."""
    confusion = _confusion(at_size(pred, truth.shape), truth, self.k)
    self.total += confusion
    f1, iou = _f1_iou(confusion)
    row: dict = {'photo': name, 'reference_pixels': int(confusion[1:].sum()) if self.binary else None}
    if self.binary:
      row.update(predicted_pixels=int(confusion[:, 1].sum()), dice=_number(f1[1]), iou=_number(iou[1]))
    else:
      labelled = confusion.sum(1)[1:] > 0
      row['mean_f1'] = float(np.mean(f1[1:][labelled])) if labelled.any() else None
    self.photos.append(row)

  def summary(self) -> dict:
    out: dict = {'photos_scored': len(self.photos)}
    if self.binary:
      tp, fp, fn = self.total[1, 1], self.total[0, 1], self.total[1, 0]
      empty = [p for p in self.photos if p['reference_pixels'] == 0]
      alarms = [p['photo'] for p in empty if p['predicted_pixels'] > 0]
      out.update({
          'photos_with_target': len(self.photos) - len(empty),
          'dice': _ratio(2 * tp, 2 * tp + fp + fn), 'iou': _ratio(tp, tp + fp + fn),
          'precision': _ratio(tp, tp + fp), 'recall': _ratio(tp, tp + fn),
          'photos_without_target': len(empty),
          'false_alarm_rate': _ratio(len(alarms), len(empty)),
          'false_alarms': alarms,
      })
    else:
      out.update(_parsing_scores(self.total, self.class_names))
      names, table = merged_left_right(self.class_names)
      merged = np.zeros((len(names), len(names)), np.int64)
      np.add.at(merged, (table[:, None], table[None, :]), self.total)
      out['left_right_merged'] = _parsing_scores(merged, names)
    out['per_photo'] = self.photos
    return out


def _number(v) -> float | None:
  return None if np.isnan(v) else float(v)


def _ratio(num, den) -> float | None:
  return float(num / den) if den else None


def _parsing_scores(confusion: np.ndarray, names: Sequence[str]) -> dict:
  """Per-class F1 and IoU (None for a class neither labelled nor predicted), and their means
  over the non-background classes labelled somewhere in the folder."""
  f1, iou = _f1_iou(confusion)
  labelled = confusion.sum(1) > 0
  labelled[0] = False
  return {'mean_f1': float(np.mean(f1[labelled])) if labelled.any() else None,
          'mean_iou': float(np.mean(iou[labelled])) if labelled.any() else None,
          'classes_labelled': [names[i] for i in np.flatnonzero(labelled)],
          'f1': {n: _number(v) for n, v in zip(names, f1)}, 'iou': {n: _number(v) for n, v in zip(names, iou)}}


def _fmt(v) -> str:
  return '-' if v is None else f'{v:.4f}' if isinstance(v, float) else str(v)


def markdown(summary: dict, title: str, unscored: Sequence[str] = ()) -> str:
  """The Markdown report of a `Scorer.summary()`."""
  lines = [f'# {title}', '']
  if 'dice' in summary:
    lines += ['| photos | with target | Dice | IoU | precision | recall | without target | '
              'false-alarm rate |', '|---|---|---|---|---|---|---|---|',
              '| ' + ' | '.join(_fmt(summary[k]) for k in (
                  'photos_scored', 'photos_with_target', 'dice', 'iou', 'precision', 'recall',
                  'photos_without_target', 'false_alarm_rate')) + ' |', '',
              'Dice, IoU, precision and recall pool the pixels of every photo; the false-alarm rate is '
              'the share of photos with an empty reference on which any pixel was predicted.', '',
              '| photo | reference pixels | predicted pixels | Dice |', '|---|---|---|---|']
    lines += [f'| {p["photo"]} | {p["reference_pixels"]} | {p["predicted_pixels"]} | {_fmt(p["dice"])} |'
              for p in summary['per_photo']]
  else:
    merged = summary['left_right_merged']
    lines += [f'{summary["photos_scored"]} photos. Mean F1 over the {len(summary["classes_labelled"])} '
              f'parts labelled: **{_fmt(summary["mean_f1"])}** (left and right merged: '
              f'{_fmt(merged["mean_f1"])}).', '', '| class | F1 | IoU |', '|---|---|---|']
    lines += [f'| {n} | {_fmt(summary["f1"][n])} | {_fmt(summary["iou"][n])} |' for n in summary['f1']]
    lines += ['', 'Left and right merged:', '', '| class | F1 | IoU |', '|---|---|---|']
    lines += [f'| {n} | {_fmt(merged["f1"][n])} | {_fmt(merged["iou"][n])} |' for n in merged['f1']]
    lines += ['', '| photo | mean F1 |', '|---|---|']
    lines += [f'| {p["photo"]} | {_fmt(p["mean_f1"])} |' for p in summary['per_photo']]
  if unscored:
    lines += ['', f'Unscored (no reference mask): {", ".join(unscored)}']
  return '\n'.join(lines) + '\n'


def write(folder: str, summary: dict, title: str, unscored: Sequence[str] = ()) -> None:
  """scores.json and scores.md in `folder`."""
  with open(os.path.join(folder, SCORES_JSON), 'w') as f:
    json.dump({**summary, 'unscored': list(unscored)}, f, indent=2)
  with open(os.path.join(folder, SCORES_MD), 'w') as f:
    f.write(markdown(summary, title, unscored))
