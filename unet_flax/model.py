"""The U-Net (Flax linen). Defaults are seed 000's: 64..1024 features, 31,031,745 parameters.

The model returns logits; sigmoid/softmax live in the losses and metrics.
Inputs whose sides are not multiples of 2**depth are padded and the output
cropped back, so 178x218 CelebA crops work.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class ConvBlock(nn.Module):
  """Two 3x3 convolutions, each followed by optional normalisation and ReLU."""
  features: int
  norm: str = 'none'  # none | batch | group
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    for _ in range(2):
      x = nn.Conv(self.features, (3, 3), padding='SAME', use_bias=self.norm == 'none', dtype=self.dtype)(x)
      if self.norm == 'batch':
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, axis_name='batch' if train else None,
                         dtype=self.dtype)(x)
      elif self.norm == 'group':
        x = nn.GroupNorm(num_groups=min(32, self.features // 4) or 1, dtype=self.dtype)(x)
      x = nn.relu(x)
    if self.dropout:
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return x


class UNet(nn.Module):
  num_classes: int = 1
  base_features: int = 64
  depth: int = 4
  norm: str = 'none'
  dropout: float = 0.0
  upsample: str = 'transpose'  # transpose | resize
  dtype: Any = jnp.float32  # compute dtype; parameters stay float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    h, w = x.shape[1:3]
    multiple = 2 ** self.depth
    pad_h, pad_w = -h % multiple, -w % multiple
    if pad_h or pad_w:
      x = jnp.pad(x, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))
    x = x.astype(self.dtype)
    block = lambda f, name: ConvBlock(f, self.norm, self.dropout, self.dtype, name=name)
    skips = []
    for level in range(self.depth):
      x = block(self.base_features * 2 ** level, f'down_{level}')(x, train)
      skips.append(x)
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = block(self.base_features * 2 ** self.depth, 'bottleneck')(x, train)
    for level in reversed(range(self.depth)):
      features = self.base_features * 2 ** level
      if self.upsample == 'transpose':
        x = nn.ConvTranspose(features, (2, 2), strides=(2, 2), dtype=self.dtype, name=f'up_{level}')(x)
      else:
        b, hh, ww, c = x.shape
        x = jax.image.resize(x, (b, hh * 2, ww * 2, c), 'bilinear')
        x = nn.Conv(features, (3, 3), padding='SAME', dtype=self.dtype, name=f'up_{level}')(x)
      x = jnp.concatenate([x, skips[level]], axis=-1)
      x = block(features, f'decoder_{level}')(x, train)
    logits = nn.Conv(self.num_classes, (1, 1), dtype=self.dtype, name='logits')(x)
    return logits[:, :h, :w].astype(jnp.float32)


def from_config(model_cfg, num_classes: int) -> UNet:
  dtypes = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}
  if model_cfg.dtype not in dtypes:
    raise ValueError(f'config.model.dtype={model_cfg.dtype!r}: use one of {sorted(dtypes)}.')
  for field, allowed in (('norm', ('none', 'batch', 'group')), ('upsample', ('transpose', 'resize'))):
    if model_cfg[field] not in allowed:
      raise ValueError(f'config.model.{field}={model_cfg[field]!r}: use one of {list(allowed)}.')
  return UNet(num_classes=num_classes, base_features=model_cfg.base_features, depth=model_cfg.depth,
              norm=model_cfg.norm, dropout=model_cfg.dropout, upsample=model_cfg.upsample,
              dtype=dtypes[model_cfg.dtype])
