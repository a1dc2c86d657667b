"""Appearance randomisation for single-source domain generalisation, inside the jitted step.

A model trained on one domain (here: rendered faces) is pushed to rely on shape rather than
on that domain's colours and textures. Each augmentation is a config option, applied to
each example with its own probability after the geometric augmentation (`augment`):

* `colour_style`: a random colour transform (a 3x3 channel mix and per-channel gamma), so
  hues, white balance and tone curves differ from any the renderer makes;
* `randconv`: a random convolution of random size mixed with the image (RandConv,
  Xu et al., ICLR 2021): textures and local contrast are scrambled, shapes kept;
* `amplitude_mix`: the Fourier amplitude spectrum is mixed with another example's while the
  phase is kept (Xu et al., "A Fourier-based Framework for Domain Generalization",
  CVPR 2021): the image takes on another's "style" (its spectrum of contrasts);
* `blur_noise`: Gaussian blur and sensor-like noise;
* `jpeg`: JPEG's 8x8 DCT quantisation at a random quality;
* `cutout`: one to three random boxes of noise or colour occlude the face, and the label
  under them is background (what is hidden is not visible, as annotators label photos).

Every draw comes from the example's own key (`augment.example_keys`), and the partner of
`amplitude_mix` is chosen by global example index from the whole batch gathered over the
devices, so results stay independent of the device count.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

OPTIONS = ('colour_style', 'randconv', 'amplitude_mix', 'blur_noise', 'jpeg', 'cutout')


def enabled(cfg) -> bool:
  return any(cfg[o] > 0 for o in OPTIONS)


def _maybe(key, p, changed, original):
  return jnp.where(jax.random.bernoulli(key, p), changed, original)


def colour_style(key, image):
  k_mix, k_gamma = jax.random.split(key)
  mix = jnp.eye(3) + 0.3 * jax.random.normal(k_mix, (3, 3))
  gamma = jnp.exp(0.3 * jax.random.normal(k_gamma, (3,)))
  out = jnp.clip(image, 1e-4, 1.0) ** gamma @ mix.T
  out = out * (jnp.mean(image) / jnp.maximum(jnp.mean(jnp.abs(out)), 1e-3))
  return jnp.clip(jnp.abs(out), 0.0, 1.0)


def randconv(key, image, kernels):
  """RandConv: a random k x k convolution (k from `kernels`), its output given the input's
  per-channel mean and spread, mixed with the input by a random weight."""
  k_size, k_w, k_mix = jax.random.split(key, 3)
  kmax = max(kernels)
  size = jnp.asarray(kernels)[jax.random.randint(k_size, (), 0, len(kernels))]
  offset = jnp.abs(jnp.arange(kmax) - kmax // 2)
  window = ((offset[:, None] <= size // 2) & (offset[None, :] <= size // 2)).astype(jnp.float32)
  w = jax.random.normal(k_w, (kmax, kmax, 3, 3)) * window[..., None, None] / jnp.sqrt(3.0 * size * size)
  out = jax.lax.conv_general_dilated(image[None], w, (1, 1), 'SAME',
                                     dimension_numbers=('NHWC', 'HWIO', 'NHWC'))[0]
  mean, std = jnp.mean(image, (0, 1)), jnp.std(image, (0, 1))
  out = (out - jnp.mean(out, (0, 1))) / (jnp.std(out, (0, 1)) + 1e-5) * std + mean
  alpha = jax.random.uniform(k_mix)
  return jnp.clip(alpha * image + (1 - alpha) * out, 0.0, 1.0)


def amplitude_mix(key, image, partner, strength):
  """The image's Fourier phase with its amplitude mixed toward `partner`'s."""
  lam = jax.random.uniform(key, maxval=strength)
  f, g = jnp.fft.fft2(image, axes=(0, 1)), jnp.fft.fft2(partner, axes=(0, 1))
  amplitude = (1 - lam) * jnp.abs(f) + lam * jnp.abs(g)
  out = jnp.real(jnp.fft.ifft2(amplitude * jnp.exp(1j * jnp.angle(f)), axes=(0, 1)))
  return jnp.clip(out, 0.0, 1.0)


def blur_noise(key, image):
  k_sigma, k_noise, k_level = jax.random.split(key, 3)
  sigma = jax.random.uniform(k_sigma, minval=0.1, maxval=1.5)
  x = jnp.arange(-3, 4, dtype=jnp.float32)
  kernel = jnp.exp(-0.5 * (x / sigma) ** 2)
  kernel = kernel / kernel.sum()
  blur = lambda img, k: jax.lax.conv_general_dilated(
      img[None], k, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'), feature_group_count=3)[0]
  image = blur(blur(image, jnp.tile(kernel[:, None, None, None], (1, 1, 1, 3))),
               jnp.tile(kernel[None, :, None, None], (1, 1, 1, 3)))
  level = jax.random.uniform(k_level, maxval=0.06)
  return jnp.clip(image + level * jax.random.normal(k_noise, image.shape), 0.0, 1.0)


# JPEG's luminance and chrominance quantisation tables (ITU-T T.81, Annex K).
_LUMA = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
                  14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
                  92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.float32).reshape(8, 8)
_CHROMA = np.full((8, 8), 99, np.float32)
_CHROMA[:4, :4] = np.array([17, 18, 24, 47, 18, 21, 26, 66, 24, 26, 56, 99, 47, 66, 99, 99]).reshape(4, 4)
_DCT = np.array([[np.sqrt((1 if k == 0 else 2) / 8) * np.cos((2 * n + 1) * k * np.pi / 16) for n in range(8)]
                 for k in range(8)], np.float32)
_TO_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)


def jpeg(key, image):
  """JPEG compression's loss at a random quality (20..90)."""
  return jpeg_at(image, jax.random.uniform(key, minval=20.0, maxval=90.0))


def jpeg_at(image, quality):
  """What JPEG at `quality` does to an image: 8x8 DCT blocks of YCbCr quantised by the standard
  tables scaled as libjpeg scales them (no chroma subsampling; sides not a multiple of 8 are
  left as they are)."""
  h, w, _ = image.shape
  if h % 8 or w % 8:
    return image
  scale = jnp.where(quality < 50, 5000 / quality, 200 - 2 * quality) / 100
  tables = jnp.stack([_LUMA, _CHROMA, _CHROMA], -1) * scale
  tables = jnp.clip(jnp.round(tables), 1, 255)
  ycc = image * 255 @ _TO_YCC.T - jnp.array([128.0, 0.0, 0.0])
  blocks = ycc.reshape(h // 8, 8, w // 8, 8, 3)
  coef = jnp.einsum('ki,aibjc,lj->akblc', _DCT, blocks, _DCT)
  coef = jnp.round(coef / tables[None, :, None, :, :]) * tables[None, :, None, :, :]
  blocks = jnp.einsum('ki,akblc,lj->aibjc', _DCT, coef, _DCT)
  rgb = (blocks.reshape(h, w, 3) + jnp.array([128.0, 0.0, 0.0])) @ np.linalg.inv(_TO_YCC).T.astype(np.float32)
  return jnp.clip(rgb / 255, 0.0, 1.0)


def cutout(key, image, label):
  """One to three boxes of noise or a flat colour over the image; the label there is 0."""
  h, w, _ = image.shape
  keys = jax.random.split(key, 4)
  count = jax.random.randint(keys[0], (), 1, 4)
  yy, xx = jnp.meshgrid(jnp.arange(h) / h, jnp.arange(w) / w, indexing='ij')
  hidden = jnp.zeros((h, w), bool)
  for i, k in enumerate(jax.random.split(keys[1], 3)):
    c = jax.random.uniform(k, (4,))
    cy, cx, sy, sx = c[0], c[1], 0.08 + 0.25 * c[2], 0.08 + 0.25 * c[3]
    box = (jnp.abs(yy - cy) < sy / 2) & (jnp.abs(xx - cx) < sx / 2)
    hidden = hidden | (box & (i < count))
  flat = jax.random.uniform(keys[2], (3,))
  noise = jax.random.uniform(keys[3], image.shape)
  fill = jnp.where(jax.random.bernoulli(keys[2], 0.5), noise, flat)
  return jnp.where(hidden[..., None], fill, image), jnp.where(hidden, 0, label)


def apply(keys, images, labels, cfg, axis_name=None):
  """Applies the configured appearance randomisations to a [B, H, W, 3] batch."""
  if not enabled(cfg):
    return images, labels
  split = jax.vmap(lambda k: jax.random.split(k, 2 * len(OPTIONS)))(keys)

  def per(i, option, fn, images, *extra):  # fn(key, image, *extra) on each example, with probability cfg[option]
    maybe = lambda k, x, *e: _maybe(k, cfg[option], fn(jax.random.fold_in(k, 1), x, *e), x)
    return jax.vmap(maybe)(split[:, i], images, *extra)

  if cfg.colour_style > 0:
    images = per(0, 'colour_style', colour_style, images)
  if cfg.randconv > 0:
    images = per(1, 'randconv', lambda k, x: randconv(k, x, tuple(cfg.randconv_kernels)), images)
  if cfg.amplitude_mix > 0:
    partners = _partners(split[:, 2], images, axis_name)
    images = per(3, 'amplitude_mix', lambda k, x, p: amplitude_mix(k, x, p, cfg.amplitude_mix_strength), images,
                 partners)
  if cfg.blur_noise > 0:
    images = per(4, 'blur_noise', blur_noise, images)
  if cfg.jpeg > 0:
    images = per(5, 'jpeg', jpeg, images)
  if cfg.cutout > 0:
    def one(k, x, y):
      cx, cy = cutout(jax.random.fold_in(k, 1), x, y)
      on = jax.random.bernoulli(k, cfg.cutout)
      return jnp.where(on, cx, x), jnp.where(on, cy, y)
    images, labels = jax.vmap(one)(split[:, 6], images, labels)
  return images, labels


def _partners(keys, images, axis_name):
  """For each example, another example of the global batch (chosen by its own key)."""
  everyone = jax.lax.all_gather(images, axis_name, tiled=True) if axis_name else images
  total = everyone.shape[0]
  first = jax.lax.axis_index(axis_name) * images.shape[0] if axis_name else 0
  index = first + jnp.arange(images.shape[0])
  # Each example's own key picks an offset 1..total-1 from its global index: never itself.
  offset = jax.vmap(lambda k: jax.random.randint(k, (), 1, max(total, 2)))(keys)
  return everyone[(index + offset) % total]
