"""The PyTorch peer for `experiments.benchmark`: the same U-Net, loss, optimiser and batch.

It mirrors `unet_flax.model.UNet` layer for layer (two 3x3 convolutions per block with
optional batch norm, 2x2 max-pool, 2x2 stride-2 transposed convolutions, skip
concatenation, a 1x1 head) so both sides do the same arithmetic; the benchmark checks that
the parameter counts agree before it times anything. Only binary targets (one output
channel, BCE from logits) and Adam are mirrored: that is what the speed comparison needs.

    python -m experiments.benchmark --config=configs/bench_cpu.py      # runs this beside ours

torch is not in requirements.txt: `pip install -r requirements-bench.txt`.
"""

from __future__ import annotations

import torch
from torch import nn

from unet_flax import speed


class ConvBlock(nn.Sequential):

  def __init__(self, cin: int, cout: int, norm: str):
    layers = []
    for c in (cin, cout):
      layers.append(nn.Conv2d(c, cout, 3, padding=1, bias=norm == 'none'))
      if norm == 'batch':
        layers.append(nn.BatchNorm2d(cout, momentum=0.1))  # torch's 0.1 is flax's 0.9
      elif norm == 'group':
        layers.append(nn.GroupNorm(min(32, cout // 4) or 1, cout))
      layers.append(nn.ReLU(inplace=True))
    super().__init__(*layers)


class UNet(nn.Module):

  def __init__(self, num_classes=1, base_features=64, depth=4, norm='none'):
    super().__init__()
    widths = [base_features * 2 ** level for level in range(depth + 1)]
    self.down = nn.ModuleList(ConvBlock(cin, w, norm) for cin, w in zip([3] + widths[:-2], widths[:-1]))
    self.bottleneck = ConvBlock(widths[-2], widths[-1], norm)
    self.up = nn.ModuleList(nn.ConvTranspose2d(widths[l + 1], widths[l], 2, stride=2)
                            for l in reversed(range(depth)))
    self.decoder = nn.ModuleList(ConvBlock(2 * widths[l], widths[l], norm) for l in reversed(range(depth)))
    self.head = nn.Conv2d(widths[0], num_classes, 1)
    self.pool = nn.MaxPool2d(2)

  def forward(self, x):
    skips = []
    for block in self.down:
      x = block(x)
      skips.append(x)
      x = self.pool(x)
    x = self.bottleneck(x)
    for up, block, skip in zip(self.up, self.decoder, reversed(skips)):
      x = block(torch.cat([up(x), skip], dim=1))
    return self.head(x)


def parameter_count(model_cfg, num_classes: int = 1) -> int:
  model = UNet(num_classes, model_cfg.base_features, model_cfg.depth, model_cfg.norm)
  return sum(p.numel() for p in model.parameters())


class Trainer:
  """One configuration of the peer (layout, AMP, torch.compile), ready to time steps."""

  def __init__(self, config, device: str, channels_last: bool, amp: bool, compile_model: bool):
    if config.loss.name != 'bce' or config.optimizer.name != 'adam':
      raise ValueError('the PyTorch peer mirrors BCE + Adam only; run the benchmark with '
                       '--config.loss.name=bce --config.optimizer.name=adam or --peer=off.')
    m = config.model
    self.device, self.amp = device, amp
    self.format = torch.channels_last if channels_last else torch.contiguous_format
    torch.manual_seed(config.seed)
    model = UNet(1, m.base_features, m.depth, m.norm).to(device).to(memory_format=self.format)
    self.model = model.train()
    self.optimizer = torch.optim.Adam(model.parameters(), lr=config.optimizer.learning_rate)
    self.loss = nn.BCEWithLogitsLoss()
    self.step_fn = torch.compile(self._step) if compile_model else self._step
    per_device = config.batch_size  # the peer runs one device: the whole global batch
    g = torch.Generator().manual_seed(0)
    size = m.image_size
    self.images = torch.rand(per_device, 3, size, size, generator=g).to(device).to(memory_format=self.format)
    self.labels = (torch.rand(per_device, 1, size, size, generator=g) < 0.2).float().to(device)
    self.batch_size = per_device

  def _step(self, images, labels):
    self.optimizer.zero_grad(set_to_none=True)
    with torch.autocast(self.device.split(':')[0], dtype=torch.bfloat16, enabled=self.amp):
      logits = self.model(images)
    loss = self.loss(logits.float(), labels)
    loss.backward()
    self.optimizer.step()
    return loss

  def _synced_step(self):
    self.step_fn(self.images, self.labels)
    if self.device.startswith('cuda'):
      torch.cuda.synchronize()

  def time_steps(self, steps: int) -> list[float]:
    return speed.time_calls(self._synced_step, steps)


def variants(device: str) -> list[dict]:
  """The peer configurations tried: the benchmark reports the fastest."""
  if device.startswith('cuda'):
    return [dict(channels_last=cl, amp=True, compile_model=c) for cl in (False, True) for c in (False, True)]
  return [dict(channels_last=cl, amp=False, compile_model=False) for cl in (False, True)]


def describe(variant: dict) -> str:
  return '{}{}{}'.format('channels_last' if variant['channels_last'] else 'NCHW',
                         ' +AMP(bf16)' if variant['amp'] else '', ' +compile' if variant['compile_model'] else '')
