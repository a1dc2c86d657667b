"""Seed 003: eyes and lips as one binary target.

    python -m experiments.main --config=configs/lips_eyes.py

Meant for one GPU on the synthetic set. Its target is in docs/training.md ("What the configs
aim at"); measured results are in docs/benchmarks.md.
"""

from configs import eyes


def get_config():
  c = eyes.get_config()
  c.target = 'eyes_lips'
  return c
