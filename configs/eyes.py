"""Seeds 001/004: both eyes with a lightweight U-Net (32..512), BCE + Dice, AdamW.

    python -m experiments.main --config=configs/eyes.py

Meant for one GPU on the synthetic set. Its target is in docs/training.md ("What the configs
aim at"); measured results are in docs/benchmarks.md.
"""

from configs import base


def get_config():
  c = base.get_config()
  c.target = 'eyes'
  c.model.base_features = 32
  c.model.norm = 'batch'
  c.loss.name = 'bce_dice'
  c.optimizer.name = 'adamw'
  c.optimizer.schedule = 'warmup_cosine'
  c.optimizer.warmup_steps = 200
  return c
