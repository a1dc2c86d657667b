"""Pictures written at the end of training: training_history.png and sample_predictions.png."""

from __future__ import annotations

import os

import jax
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from unet_flax.pictures import PALETTE, colourize, overlay  # noqa: E402
from unet_flax.workdir import Workdir  # noqa: E402


def training_history(workdir: str | os.PathLike) -> str:
  run = Workdir(workdir)
  rows = run.read_metrics()
  score = 'mean_f1' if any('mean_f1' in r for r in rows) else 'dice'
  panels = [('loss', 'loss'), (score, score), ('accuracy', 'pixel accuracy')]
  fig, axes = plt.subplots(1, 3, figsize=(15, 4))
  for ax, (key, title) in zip(axes, panels):
    for split, style in (('train', '-'), ('validation', 'o-')):
      pts = [(r['step'], r[key]) for r in rows if r['split'] == split and key in r]
      if pts:
        ax.plot(*zip(*pts), style, label=split, markersize=4)
    ax.set_title(title)
    ax.set_xlabel('step')
    ax.grid(alpha=0.3)
    ax.legend()
  return _save(fig, run.history_picture)


def compare_runs(workdirs, labels, path: str) -> str:
  """Validation loss and score (Dice, or mean F1) of several runs against steps, overlaid."""
  fig, axes = plt.subplots(1, 2, figsize=(12, 4))
  for workdir, label in zip(workdirs, labels):
    rows = [r for r in Workdir(workdir).read_metrics() if r['split'] == 'validation']
    score = 'mean_f1' if any('mean_f1' in r for r in rows) else 'dice'
    for ax, key in zip(axes, ('loss', score)):
      pts = [(r['step'], r[key]) for r in rows if r.get(key) is not None]
      if pts:
        ax.plot(*zip(*pts), 'o-', label=label, markersize=3)
  for ax, title in zip(axes, ('validation loss', 'validation Dice / mean F1')):
    ax.set_title(title)
    ax.set_xlabel('step')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  return _save(fig, path)


def sample_predictions(workdir: str | os.PathLike, images, labels, predictions, num_classes: int,
                       class_names=None) -> str:
  """A grid: one row per example with image, ground truth, prediction and overlay; face parsing
  adds a legend of the class colours."""
  n = len(images)
  fig, axes = plt.subplots(n, 4, figsize=(10, 2.6 * n), squeeze=False)
  if num_classes > 1 and class_names:
    fig.legend(handles=[Patch(color=PALETTE[i] / 255, label=name) for i, name in enumerate(class_names)],
               loc='center right', fontsize=8, frameon=False)
  for row in range(n):
    image = (np.asarray(images[row]) * 255).astype(np.uint8)
    for col, (title, pic) in enumerate((
        ('image', image), ('ground truth', colourize(labels[row], num_classes)),
        ('prediction', colourize(predictions[row], num_classes)),
        ('overlay', overlay(image, predictions[row], num_classes)))):
      axes[row, col].imshow(pic)
      axes[row, col].axis('off')
      if row == 0:
        axes[row, col].set_title(title)
  return _save(fig, Workdir(workdir).predictions_picture, dpi=80,
               rect=(0, 0, 0.84 if num_classes > 1 and class_names else 1, 1))


def _save(fig, path: str, dpi: int = 100, **layout) -> str:
  fig.tight_layout(**layout)
  fig.savefig(path, dpi=dpi)
  plt.close(fig)
  return path


def write_all(workdir: str | os.PathLike, config, num_examples: int = 6) -> list[str]:
  """Both pictures for a trained workdir (its best checkpoint, on the test split). Every
  process restores the checkpoint (Orbax restores are collective); process 0 writes."""
  from unet_flax import predict  # only here: plotting the history needs no model
  predictor = predict.Predictor(workdir, config=config)
  images, labels = predict.test_examples(config, num_examples)
  preds = predictor.labels(images)
  if jax.process_index() != 0:
    return []
  grid = sample_predictions(workdir, images, labels, preds, predictor.num_classes, predictor.class_names)
  return [training_history(workdir), grid]
