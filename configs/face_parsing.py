"""Seed 002: full face parsing, 19 classes (background + 18 CelebAMask-HQ parts).

    python -m experiments.main --config=configs/face_parsing.py \
        --config.dataset.config=celebamask_hq --config.dataset.manual_dir=/data/CelebAMask-HQ

Expected: mean F1 over the 18 parts above 0.75 on CelebAMask-HQ (best face parsers reach ~0.85
mean F1); on the synthetic set, above 0.85.
"""

from configs import base


def get_config():
  c = base.get_config()
  c.target = 'face_parsing'
  c.model.norm = 'batch'
  c.loss.name = 'cross_entropy'
  c.optimizer.schedule = 'warmup_cosine'
  c.optimizer.warmup_steps = 500
  return c
