"""Seed 003's conditional GAN: pix2pix translating a face into its lips+eyes mask.

    python -m experiments.main --config=configs/pix2pix_lips_eyes.py

The U-Net of configs/lips_eyes.py is the generator (mask = sigmoid of its logits), a 70x70
PatchGAN conditioned on the image is the discriminator; generator loss = adversarial BCE +
100 x L1, both networks trained with Adam (lr 2e-4, beta1 0.5) in one pmapped step.
Evaluation thresholds the generator's mask, so the results sit beside the plain U-Net's. The
aim is a lips+eyes Dice near configs/lips_eyes.py's at the same budget (docs/training.md);
measured results are in docs/benchmarks.md.
"""

from configs import lips_eyes


def get_config():
  c = lips_eyes.get_config()
  c.model.kind = 'pix2pix'
  c.model.dropout = 0.0  # pix2pix's decoder dropout is its noise source; here augmentation is
  c.loss.name = 'bce'  # what validation reports as loss: the generator's mask against the truth
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = 2e-4
  c.optimizer.beta1 = 0.5
  c.optimizer.schedule = 'constant'
  c.optimizer.warmup_steps = 0
  return c
