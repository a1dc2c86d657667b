"""On-device augmentation and resizing, run inside the jitted train/eval steps.

Every geometric augmentation (flip, scale, crop offset, rotation) is one affine
map drawn once per example and applied to both image (bilinear) and label
(nearest neighbour), so they never disagree. A horizontal flip also relabels
left/right parts through `mirror_label_map`. Each example's randomness comes from
the step's key folded with the example's global index in the batch, so a resumed
run draws the same numbers and so does a run on any number of devices or hosts. Then the
appearance randomisations of `appearance` (RandConv, colour style, amplitude mixing, blur,
noise, JPEG, cut-out), each off unless its config option is set.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy import ndimage

from unet_flax import appearance


def resize(images: jax.Array, labels: jax.Array, size: int) -> tuple[jax.Array, jax.Array]:
  """Resizes [B, H, W, C] images (antialiased) and [B, H, W] labels (nearest) to size x size."""
  if images.shape[1:3] == (size, size):
    return images, labels
  b, _, _, c = images.shape
  images = jax.image.resize(images, (b, size, size, c), 'linear', antialias=True)
  labels = jax.image.resize(labels, (b, size, size), 'nearest')
  return images, labels


def _warp_one(key, image, label, cfg, mirror_label_map):
  k_flip, k_scale, k_rot, k_shift, k_colour = jax.random.split(key, 5)
  h, w = label.shape
  flip = jax.random.bernoulli(k_flip, 0.5) & cfg.hflip
  log_lo, log_hi = jnp.log(cfg.scale_range[0]), jnp.log(cfg.scale_range[1])
  scale = jnp.exp(jax.random.uniform(k_scale, (), minval=log_lo, maxval=log_hi))
  angle = jnp.deg2rad(jax.random.uniform(k_rot, (), minval=-1.0, maxval=1.0) * cfg.rotation_degrees)
  # Crop: shift the zoomed window anywhere that keeps it inside the image (or, zoomed out,
  # by up to the same fraction of the border).
  max_shift = jnp.abs(1 - 1 / scale) / 2 * jnp.array([h, w])
  shift = jax.random.uniform(k_shift, (2,), minval=-1.0, maxval=1.0) * max_shift
  yy, xx = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                        indexing='ij')
  cy, cx = (h - 1) / 2, (w - 1) / 2
  xx = jnp.where(flip, 2 * cx - xx, xx)
  dy, dx = yy - cy, xx - cx
  cos, sin = jnp.cos(angle) / scale, jnp.sin(angle) / scale
  src_y = cy + cos * dy - sin * dx + shift[0]
  src_x = cx + sin * dy + cos * dx + shift[1]
  # map_coordinates, not a hand-fused gather of all channels (~40 ms/step faster on CPU): the
  # fused version was not bitwise the same when XLA compiled the step for 1 and for 4 devices,
  # and batch norm amplified that into a 1% different update (test_training_does_not_depend_
  # on_the_device_count).
  coords = [src_y, src_x]
  image = jnp.stack([ndimage.map_coordinates(image[..., c], coords, order=1, mode='constant')
                     for c in range(image.shape[-1])], axis=-1)
  label = ndimage.map_coordinates(label.astype(jnp.int32), coords, order=0, mode='constant')
  label = jnp.where(flip, mirror_label_map[label], label)
  return _colour_jitter(k_colour, image, cfg), label


def _colour_jitter(key, image, cfg):
  kb, kc, ks = jax.random.split(key, 3)
  brightness = jax.random.uniform(kb, (), minval=-1.0, maxval=1.0) * cfg.brightness
  contrast = 1 + jax.random.uniform(kc, (), minval=-1.0, maxval=1.0) * cfg.contrast
  saturation = 1 + jax.random.uniform(ks, (), minval=-1.0, maxval=1.0) * cfg.saturation
  grey = jnp.mean(image, axis=-1, keepdims=True)
  image = grey + (image - grey) * saturation
  image = (image - jnp.mean(image)) * contrast + jnp.mean(image) + brightness
  return jnp.clip(image, 0.0, 1.0)


def example_keys(key: jax.Array, batch_size: int, axis_name: str | None = None) -> jax.Array:
  """One key per example, from `key` and the example's global index. Under `axis_name`
  devices hold consecutive slices of the global batch, so this device's first example has
  index axis_index * batch_size; the keys are then the same on any number of devices."""
  offset = jax.lax.axis_index(axis_name) * batch_size if axis_name else 0
  return jax.vmap(lambda i: jax.random.fold_in(key, i))(offset + jnp.arange(batch_size))


def augment(key: jax.Array, images: jax.Array, labels: jax.Array, cfg,
            mirror_label_map: jax.Array, axis_name: str | None = None) -> tuple[jax.Array, jax.Array]:
  """Augments a [B, H, W, 3] float batch and its [B, H, W] labels; cfg is config.augment.
  Under `axis_name` the batch is this device's slice of the global batch (`example_keys`)."""
  keys = example_keys(key, images.shape[0], axis_name)
  warp = jax.vmap(lambda k, i, l: _warp_one(k, i, l, cfg, mirror_label_map))
  images, labels = warp(keys, images, labels)
  appearance_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
  return appearance.apply(appearance_keys, images, labels, cfg, axis_name)
