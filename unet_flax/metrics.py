"""CLU metrics for segmentation: dataset-level confusion counts, never means of batch scores.

Counts are per class ([K]: K = 2 for a binary target, background and target;
19 for face parsing) and only valid (unpadded) examples count. Batches are
merged on the host in float64 so pixel counts over a whole split stay exact.
"""


from collections.abc import Sequence

import flax
import jax
import jax.numpy as jnp
import numpy as np
from clu import metrics as clu_metrics

from unet_flax import losses

BINARY_METRICS = ('dice', 'iou', 'precision', 'recall', 'accuracy', 'bce', 'loss')
PARSING_METRICS = ('mean_f1', 'mean_iou', 'accuracy', 'cross_entropy', 'loss')
LOWER_IS_BETTER = ('loss', 'bce', 'cross_entropy')  # the best checkpoint minimises these


def metric_names(num_classes: int) -> tuple[str, ...]:
  """The scalar metrics `summarize` reports for a model with `num_classes` outputs."""
  return PARSING_METRICS if num_classes > 1 else BINARY_METRICS


def default_best_metric(num_classes: int) -> str:
  return 'mean_f1' if num_classes > 1 else 'dice'


@flax.struct.dataclass
class ConfusionCounts(clu_metrics.Metric):
  """Per-class true positives, false positives and false negatives, plus the pixel total."""
  tp: jnp.ndarray
  fp: jnp.ndarray
  fn: jnp.ndarray
  pixels: jnp.ndarray

  @classmethod
  def from_model_output(cls, *, logits, labels, mask, **_):
    num = max(2, logits.shape[-1])
    pred = losses.predicted_labels(logits)
    w = mask.astype(jnp.float32)[:, None, None, None]
    p, y = jax.nn.one_hot(pred, num), jax.nn.one_hot(labels, num)
    tp = jnp.sum(p * y * w, axis=(0, 1, 2))
    return cls(tp=tp, fp=jnp.sum(p * w, axis=(0, 1, 2)) - tp, fn=jnp.sum(y * w, axis=(0, 1, 2)) - tp,
               pixels=jnp.sum(w) * labels.shape[1] * labels.shape[2])

  @classmethod
  def empty(cls):
    zero = jnp.zeros((), jnp.float32)
    return cls(tp=zero, fp=zero, fn=zero, pixels=zero)

  def merge(self, other):
    return jax.tree.map(lambda a, b: a + b, self, other)

  def reduce(self):
    return jax.tree.map(lambda x: x.sum(0), self)

  def compute(self):
    tp, fp, fn = (np.asarray(a, np.float64) for a in (self.tp, self.fp, self.fn))
    with np.errstate(divide='ignore', invalid='ignore'):
      # NaN where a class is neither labelled nor predicted anywhere: `summarize` decides.
      f1 = 2 * tp / (2 * tp + fp + fn)
      iou = tp / (tp + fp + fn)
      precision = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
      recall = np.where(tp + fn > 0, tp / (tp + fn), 1.0)
    return {'f1': f1, 'iou': iou, 'precision': precision, 'recall': recall,
            'accuracy': tp.sum() / max(float(np.asarray(self.pixels)), 1.0)}


@flax.struct.dataclass
class SegmentationMetrics(clu_metrics.Collection):
  loss: clu_metrics.Average.from_output('loss_per_example')  # masked by `mask`
  cross_entropy: clu_metrics.Average.from_output('ce_per_example')
  counts: ConfusionCounts


def model_outputs(logits, labels, valid, loss_per_example):
  """The keyword arguments `SegmentationMetrics.single_from_model_output` takes."""
  ce = jax.vmap(lambda l, y: losses.cross_entropy(l[None], y[None], jnp.ones((1,))))(logits, labels)
  return dict(logits=logits, labels=labels, mask=valid, loss_per_example=loss_per_example,
              ce_per_example=ce)


def global_batch(axis_name, logits, labels, valid, loss_per_example) -> SegmentationMetrics:
  """The metrics of the whole batch, inside a pmapped step.

  Every metric here is a sum (totals, counts), so one psum gives what CLU's
  `gather_from_model_output` gives (an all-gather per leaf, then a sum) in one all-reduce that
  XLA merges with the step's others: fewer collectives, each a point where the devices wait.
  """
  return jax.lax.psum(SegmentationMetrics.single_from_model_output(
      **model_outputs(logits, labels, valid, loss_per_example)), axis_name)


def to_host(metrics: SegmentationMetrics) -> SegmentationMetrics:
  """Device (replicated or not) -> numpy float64, ready to be merged across batches."""
  return jax.tree.map(lambda x: np.asarray(jax.device_get(x), np.float64), metrics)


def from_leaves(leaves) -> SegmentationMetrics:
  """The inverse of `jax.tree.leaves` on host metrics (as a checkpoint stores a partial window)."""
  return jax.tree.unflatten(jax.tree.structure(SegmentationMetrics.empty()), list(leaves))


def summarize(metrics: SegmentationMetrics, class_names: Sequence[str]) -> dict:
  """Flat, JSON-ready values. Binary: the target class, where a split with no target and no
  false positive scores 1.0. Face parsing: per class (None for a class neither labelled nor
  predicted in the split) and means over the non-background classes present."""
  computed = metrics.compute()
  counts = computed['counts']
  out = {'loss': float(computed['loss']), 'accuracy': float(counts['accuracy'])}
  if len(class_names) == 1:
    out['bce'] = float(computed['cross_entropy'])
    out.update({k: float(np.nan_to_num(counts[k][1], nan=1.0)) for k in ('f1', 'iou', 'precision', 'recall')})
    out['dice'] = out.pop('f1')
    return out
  out['cross_entropy'] = float(computed['cross_entropy'])
  present = ~np.isnan(counts['f1'][1:])
  out['mean_f1'] = float(np.mean(counts['f1'][1:][present])) if present.any() else 0.0
  out['mean_iou'] = float(np.mean(counts['iou'][1:][present])) if present.any() else 0.0
  for i, name in enumerate(class_names):
    absent = np.isnan(counts['f1'][i])
    out[f'f1/{name}'] = None if absent else float(counts['f1'][i])
    out[f'iou/{name}'] = None if absent else float(counts['iou'][i])
  return out


def per_class_markdown(summary: dict, title: str) -> str:
  """A Markdown table of the per-class F1 and IoU in a face-parsing `summarize` result."""
  names = [k.split('/', 1)[1] for k in summary if k.startswith('f1/')]
  fmt = lambda v: '-' if v is None else f'{v:.4f}'
  lines = [f'# {title}', '', '| class | F1 | IoU |', '|---|---|---|']
  lines += [f'| {n} | {fmt(summary[f"f1/{n}"])} | {fmt(summary[f"iou/{n}"])} |' for n in names]
  lines += [f'| **mean over parts present** | {fmt(summary["mean_f1"])} | {fmt(summary["mean_iou"])} |', '',
            '"-": the class is neither labelled nor predicted in this split.', '']
  return '\n'.join(lines)
