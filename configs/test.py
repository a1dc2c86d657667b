"""Tiny config for tests: a 3-level U-Net with 4 base features at 64x64, a few steps.

    python -m experiments.main --config=configs/test.py --config.dataset.data_dir=/tmp/tfds

Reaches nothing in particular; it exists so tests run in seconds (most of a test's time is
XLA compiling the step, which grows with the depth).
"""

from configs import base


def get_config():
  c = base.get_config()
  c.dataset.synthetic_sizes = {'train': 24, 'validation': 6, 'test': 5}
  c.dataset.synthetic_seed = 7
  c.model.image_size = 64
  c.model.base_features = 4
  c.model.depth = 3
  c.batch_size = 8
  c.eval_batch_size = 8
  c.num_epochs = 0
  c.num_train_steps = 6
  c.log_every_steps = 2
  c.eval_every_steps = 3
  c.checkpoint_every_steps = 3
  return c
