"""Seed 002: full face parsing, 19 classes (background + 18 CelebAMask-HQ parts).

    python -m experiments.main --config=configs/face_parsing.py \
        --config.dataset.config=celebamask_hq --config.dataset.manual_dir=/data/CelebAMask-HQ

Meant for CelebAMask-HQ on a GPU, scored by the mean F1 over the 18 parts; it also trains on the
synthetic set. Its target is in docs/training.md ("What the configs aim at"); measured results
are in docs/benchmarks.md.
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
