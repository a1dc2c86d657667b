"""The U-Net (Flax linen). Defaults are seed 000's: 64..1024 features, 31,031,745 parameters.

The model returns logits; sigmoid/softmax live in the losses and metrics. In
training, batch norm statistics are synchronised over the `axis_name` devices and
dropout masks are drawn per example from its global index, so a batch split over
any number of devices computes the same function.
Inputs whose sides are not multiples of 2**depth are padded and the output
cropped back, so 178x218 CelebA crops work.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from unet_flax import augment
from unet_flax.errors import ConfigError


class ExampleDropout(nn.Module):
  """Dropout whose mask for example i comes from (rng, global index of i): the same masks
  whether the batch sits on one device or is split over many (`axis_name`)."""
  rate: float
  axis_name: str | None = 'batch'

  @nn.compact
  def __call__(self, x, train: bool):
    if not train or self.rate == 0:
      return x
    keys = augment.example_keys(self.make_rng('dropout'), x.shape[0], self.axis_name)
    keep = jax.vmap(lambda k: jax.random.bernoulli(k, 1 - self.rate, x.shape[1:]))(keys)
    return jnp.where(keep, x / (1 - self.rate), 0).astype(x.dtype)


class UpConv2x2(nn.Module):
  """2x2, stride-2 transposed convolution, written as one matmul and a depth-to-space.

  The same function and parameters (kernel [2, 2, in, out], bias) as
  `nn.ConvTranspose(features, (2, 2), strides=(2, 2))`, so checkpoints are
  interchangeable. As a convolution, XLA:CPU computes its kernel gradient as a
  dilated convolution with a window the size of the image, which took a quarter of
  the CPU train step (docs/benchmarks.md); as a matmul every gradient is a matmul.
  """
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    kernel = self.param('kernel', nn.initializers.lecun_normal(), (2, 2, x.shape[-1], self.features))
    bias = self.param('bias', nn.initializers.zeros_init(), (self.features,))
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    b, h, w, _ = x.shape
    # ConvTranspose does not flip its kernel: output pixel (2h + i, 2w + j) uses tap (1 - i, 1 - j).
    y = jnp.einsum('bhwc,ijcd->bhiwjd', x, kernel[::-1, ::-1])
    return y.reshape(b, 2 * h, 2 * w, self.features) + bias


def _windows(x):
  """[B, H, W, C] -> [B, H/2, W/2, C, 4]: each 2x2 window's values, row by row."""
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(b, h // 2, w // 2, c, 4)


@jax.custom_vjp
def max_pool_2x2(x):
  """2x2 max-pool as a reshape and a max. Its gradient is an elementwise mask, where
  `nn.max_pool`'s select-and-scatter became iota, reduce-window and scatter on XLA:CPU. The
  gradient is JAX's own rule for max (shared equally between tied maxima, which flat image
  regions make common), but with the ties found in the forward pass: JAX compares the input
  with the output again, and when XLA recomputes the input in another fusion (it does with
  group norm on CPU) nothing matches and the gradient is 0/0."""
  return _windows(x).max(axis=-1)


def _max_pool_fwd(x):
  windows = _windows(x)
  pooled = windows.max(axis=-1)
  ties = windows == pooled[..., None]
  # Should XLA still round the two uses of `windows` apart, the argmax stands in.
  ties = jnp.where(ties.any(axis=-1, keepdims=True), ties,
                   jax.nn.one_hot(jnp.argmax(windows, axis=-1), 4, dtype=bool))
  return pooled, ties


def _max_pool_bwd(ties, g):
  b, h, w, c, _ = ties.shape
  share = (g / ties.sum(axis=-1).astype(g.dtype))[..., None] * ties.astype(g.dtype)
  # _windows only moves values, so its transpose puts each window's gradient back in place.
  unwindow = jax.linear_transpose(_windows, jax.ShapeDtypeStruct((b, 2 * h, 2 * w, c), g.dtype))
  return unwindow(share)


max_pool_2x2.defvjp(_max_pool_fwd, _max_pool_bwd)


class ConvBlock(nn.Module):
  """Two 3x3 convolutions, each followed by optional normalisation and ReLU."""
  features: int
  norm: str = 'none'  # none | batch | group
  dropout: float = 0.0
  dtype: Any = jnp.float32
  axis_name: str | None = 'batch'  # the device axis of the train step

  @nn.compact
  def __call__(self, x, train: bool):
    for _ in range(2):
      x = nn.Conv(self.features, (3, 3), padding='SAME', use_bias=self.norm == 'none', dtype=self.dtype)(x)
      if self.norm == 'batch':
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, use_fast_variance=False,
                         axis_name=self.axis_name if train else None, dtype=self.dtype)(x)
      elif self.norm == 'group':
        x = nn.GroupNorm(num_groups=min(32, self.features // 4) or 1, dtype=self.dtype)(x)
      x = nn.relu(x)
    if self.dropout:
      x = ExampleDropout(self.dropout, self.axis_name)(x, train)
    return x


class OutputConv(nn.Module):
  """The U-Net's 1x1 output convolution: nn.Conv's parameters and initial values, but it can
  compute its first `outputs` channels alone. Inference leaves out the auxiliary channels this
  way rather than by slicing the logits, which TFLite cannot convert for a dynamic batch."""
  features: int

  @nn.compact
  def __call__(self, x, outputs: int):
    kernel = self.param('kernel', nn.initializers.lecun_normal(), (1, 1, x.shape[-1], self.features))
    bias = self.param('bias', nn.initializers.zeros_init(), (self.features,))
    y = jax.lax.conv_general_dilated(x, kernel[..., :outputs], (1, 1), ((0, 0), (0, 0)), lhs_dilation=(1, 1),
                                     rhs_dilation=(1, 1), dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return y + bias[:outputs]


class UNet(nn.Module):
  num_classes: int = 1
  auxiliary_classes: int = 0  # extra output channels, returned only when asked (config.auxiliary_target)
  base_features: int = 64
  depth: int = 4
  norm: str = 'none'
  dropout: float = 0.0
  upsample: str = 'transpose'  # transpose | resize
  dtype: Any = jnp.float32  # compute dtype; parameters stay float32
  axis_name: str | None = 'batch'  # the device axis of the train step (None: not under pmap)

  @nn.compact
  def __call__(self, x, train: bool = False, with_auxiliary: bool = False):
    """Logits [B, H, W, num_classes]; with_auxiliary: (those, the auxiliary channels' logits)."""
    if with_auxiliary and not self.auxiliary_classes:
      raise ValueError('with_auxiliary=True needs a U-Net with auxiliary_classes > 0')
    h, w = x.shape[1:3]
    multiple = 2 ** self.depth
    pad_h, pad_w = -h % multiple, -w % multiple
    if pad_h or pad_w:
      x = jnp.pad(x, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))
    x = x.astype(self.dtype)
    block = lambda f, name: ConvBlock(f, self.norm, self.dropout, self.dtype, self.axis_name, name=name)
    skips = []
    for level in range(self.depth):
      x = block(self.base_features * 2 ** level, f'down_{level}')(x, train)
      skips.append(x)
      x = max_pool_2x2(x)
    x = block(self.base_features * 2 ** self.depth, 'bottleneck')(x, train)
    for level in reversed(range(self.depth)):
      features = self.base_features * 2 ** level
      if self.upsample == 'transpose':
        x = UpConv2x2(features, self.dtype, name=f'up_{level}')(x)
      else:
        b, hh, ww, c = x.shape
        x = jax.image.resize(x, (b, hh * 2, ww * 2, c), 'bilinear')
        x = nn.Conv(features, (3, 3), padding='SAME', dtype=self.dtype, name=f'up_{level}')(x)
      x = jnp.concatenate([x, skips[level]], axis=-1)
      x = block(features, f'decoder_{level}')(x, train)
    # The head runs in float32 whatever the compute dtype: logits feed the losses directly.
    outputs = self.num_classes + (self.auxiliary_classes if with_auxiliary else 0)
    logits = OutputConv(self.num_classes + self.auxiliary_classes, name='logits')(x.astype(jnp.float32), outputs)
    logits = logits[:, :h, :w]
    return (logits[..., :self.num_classes], logits[..., self.num_classes:]) if with_auxiliary else logits


class PatchDiscriminator(nn.Module):
  """pix2pix's 70x70 PatchGAN: one real/fake logit per overlapping 70x70 patch of the
  (image, mask) pair, concatenated on channels. Four 4x4 convolutions (stride 2, 2, 2, 1;
  `features` x 1, 2, 4, 8) and a 4x4 output convolution: a 256x256 input gives 30x30 logits.
  Instance normalisation (per example) keeps it independent of how the batch is split."""
  features: int = 64
  normalize: bool = True

  @nn.compact
  def __call__(self, image, mask):
    x = jnp.concatenate([image, mask], axis=-1)
    for i, (mult, stride) in enumerate(((1, 2), (2, 2), (4, 2), (8, 1))):
      x = nn.Conv(self.features * mult, (4, 4), strides=stride, padding=((1, 1), (1, 1)), name=f'conv_{i}')(x)
      if i and self.normalize:
        x = nn.GroupNorm(num_groups=None, group_size=1, name=f'norm_{i}')(x)
      x = nn.leaky_relu(x, 0.2)
    return nn.Conv(1, (4, 4), padding=((1, 1), (1, 1)), name='logits')(x)[..., 0]


def from_config(model_cfg, num_classes: int, auxiliary_classes: int = 0) -> UNet:
  dtypes = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}
  if model_cfg.dtype not in dtypes:
    raise ConfigError(f'config.model.dtype={model_cfg.dtype!r}: use one of {sorted(dtypes)}.')
  for field, allowed in (('norm', ('none', 'batch', 'group')), ('upsample', ('transpose', 'resize'))):
    if model_cfg[field] not in allowed:
      raise ConfigError(f'config.model.{field}={model_cfg[field]!r}: use one of {list(allowed)}.')
  return UNet(num_classes=num_classes, auxiliary_classes=auxiliary_classes,
              base_features=model_cfg.base_features, depth=model_cfg.depth,
              norm=model_cfg.norm, dropout=model_cfg.dropout, upsample=model_cfg.upsample,
              dtype=dtypes[model_cfg.dtype])
