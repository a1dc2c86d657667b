"""Segmentation losses, all computed from logits (numerically stable: no log of a sigmoid).

Binary targets: logits [B, H, W, 1], labels [B, H, W] in {0, 1}.
Face parsing: logits [B, H, W, K], labels [B, H, W] class ids.
`weights` [B] is 1 for real examples and 0 for padding.

Every loss is a loss of the global batch. Called with `axis_name` inside a
pmapped step, each device holds a slice of the batch and the sums behind a mean
or a Dice go through `batch_sum`: the value is the global sum and the gradients
are scaled so that averaging the devices' gradients (`pmean`) gives exactly the
gradient of the global-batch loss. So the objective, and with it training, does
not depend on how many devices share the batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from unet_flax.errors import ConfigError

EPS = 1.0  # Dice smoothing, in pixels


def batch_sum(x, axis_name=None):
  """Sum over the devices of `axis_name` (identity when None), differentiable per device.

  The value is psum(x). The gradient reaching this device's `x` is multiplied by the
  device count, because the train step averages gradients over devices: the mean of the
  devices' gradients is then the gradient of the loss of the summed values.
  """
  if axis_name is None:
    return x
  n = jax.lax.psum(1, axis_name)
  return jax.lax.stop_gradient(jax.lax.psum(x, axis_name)) + n * (x - jax.lax.stop_gradient(x))


def _mean(per_pixel, weights, axis_name=None):
  per_example = per_pixel.reshape(per_pixel.shape[0], -1).mean(axis=1)
  total = batch_sum(jnp.sum(per_example * weights), axis_name)
  return total / jnp.maximum(jax.lax.stop_gradient(batch_sum(jnp.sum(weights), axis_name)), 1.0)


def bce(logits, labels, weights, pos_weight=1.0, axis_name=None):
  x, y = logits[..., 0], labels.astype(jnp.float32)
  # -[w y log s(x) + (1 - y) log(1 - s(x))] with log s(x) = -softplus(-x).
  per_pixel = pos_weight * y * jax.nn.softplus(-x) + (1 - y) * jax.nn.softplus(x)
  return _mean(per_pixel, weights, axis_name)


def focal(logits, labels, weights, gamma=2.0, alpha=0.25, axis_name=None):
  x, y = logits[..., 0], labels.astype(jnp.float32)
  p = jax.nn.sigmoid(x)
  ce = y * jax.nn.softplus(-x) + (1 - y) * jax.nn.softplus(x)
  p_t = y * p + (1 - y) * (1 - p)
  alpha_t = y * alpha + (1 - y) * (1 - alpha)
  return _mean(alpha_t * (1 - p_t) ** gamma * ce, weights, axis_name)


def softmax_cross_entropy(logits, labels, weights, axis_name=None):
  log_p = jax.nn.log_softmax(logits, axis=-1)
  per_pixel = -jnp.take_along_axis(log_p, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]
  return _mean(per_pixel, weights, axis_name)


def balanced_cross_entropy(logits, labels, weights, axis_name=None):
  """Softmax cross entropy with each class weighted by 1/sqrt of its share of the global batch's
  pixels (weights scaled so an average pixel weighs 1): small parts (eyes, brows, lips) are not
  drowned by skin, hair and background."""
  k = logits.shape[-1]
  onehot = jax.nn.one_hot(labels, k)
  w = weights[:, None, None, None]
  counts = jax.lax.stop_gradient(batch_sum(jnp.sum(onehot * w, axis=(0, 1, 2)), axis_name))
  share = counts / jnp.maximum(counts.sum(), 1.0)
  class_weight = jax.lax.rsqrt(share + 1e-4)
  class_weight = class_weight / jnp.maximum(jnp.sum(share * class_weight), 1e-6)
  log_p = jax.nn.log_softmax(logits, axis=-1)
  per_pixel = -jnp.sum(onehot * log_p, axis=-1) * class_weight[labels]
  return _mean(per_pixel, weights, axis_name)


def probabilities(logits):
  """Per-class probabilities: [B, H, W, 2] (background, target) for binary, softmax otherwise."""
  if logits.shape[-1] == 1:
    p = jax.nn.sigmoid(logits)
    return jnp.concatenate([1 - p, p], axis=-1)
  return jax.nn.softmax(logits, axis=-1)


def predicted_labels(logits):
  """[B, H, W] label map: logit > 0 for a binary target, argmax over classes otherwise."""
  if logits.shape[-1] == 1:
    return (logits[..., 0] > 0).astype(jnp.int32)
  return jnp.argmax(logits, axis=-1).astype(jnp.int32)


def soft_dice(logits, labels, weights, axis_name=None):
  """1 - soft Dice of the whole (global) batch; binary: the target class; multi-class: mean
  over non-background classes."""
  probs = probabilities(logits)
  onehot = jax.nn.one_hot(labels, probs.shape[-1])
  w = weights[:, None, None, None]
  inter = batch_sum(jnp.sum(probs * onehot * w, axis=(0, 1, 2))[1:], axis_name)
  total = batch_sum(jnp.sum((probs + onehot) * w, axis=(0, 1, 2))[1:], axis_name)
  return 1.0 - jnp.mean((2 * inter + EPS) / (total + EPS))


def adversarial(logits, real: bool, axis_name=None):
  """GAN BCE over a discriminator's patch logits [B, h, w]: towards 1 for real, 0 for fake."""
  per_patch = jax.nn.softplus(-logits) if real else jax.nn.softplus(logits)
  return _mean(per_patch, jnp.ones(logits.shape[0]), axis_name)


def l1(prediction, target, axis_name=None):
  """Mean absolute difference over the global batch."""
  return _mean(jnp.abs(prediction - target), jnp.ones(prediction.shape[0]), axis_name)


def cross_entropy(logits, labels, weights, pos_weight=1.0, axis_name=None):
  if logits.shape[-1] == 1:
    return bce(logits, labels, weights, pos_weight, axis_name)
  return softmax_cross_entropy(logits, labels, weights, axis_name)


def make_loss(loss_cfg):
  """The loss named by config.loss: bce | dice | bce_dice | focal | cross_entropy | balanced_ce_dice
  (face parsing: class-balanced cross entropy plus soft Dice).

  The result is called as loss(logits, labels, weights, axis_name=None)."""
  name, pos_weight = loss_cfg.name, loss_cfg.pos_weight
  gamma, alpha = loss_cfg.focal_gamma, loss_cfg.focal_alpha
  losses = {
      'bce': lambda l, y, w, axis_name=None: bce(l, y, w, pos_weight, axis_name),
      'cross_entropy': lambda l, y, w, axis_name=None: cross_entropy(l, y, w, pos_weight, axis_name),
      'dice': soft_dice,
      'bce_dice': lambda l, y, w, axis_name=None: (cross_entropy(l, y, w, pos_weight, axis_name)
                                                   + soft_dice(l, y, w, axis_name)),
      'focal': lambda l, y, w, axis_name=None: focal(l, y, w, gamma, alpha, axis_name),
      'balanced_ce_dice': lambda l, y, w, axis_name=None: (balanced_cross_entropy(l, y, w, axis_name)
                                                           + soft_dice(l, y, w, axis_name)),
  }
  if name not in losses:
    raise ConfigError(f'config.loss.name={name!r}: use one of {sorted(losses)}.')
  return losses[name]
