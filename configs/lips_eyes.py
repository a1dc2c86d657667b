"""Seed 003: eyes and lips as one binary target.

    python -m experiments.main --config=configs/lips_eyes.py

Expected (synthetic set, one GPU): eyes+lips test Dice above 0.85.
"""

from configs import eyes


def get_config():
  c = eyes.get_config()
  c.target = 'eyes_lips'
  return c
