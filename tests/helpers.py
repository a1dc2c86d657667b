"""Helpers the tests share: tiny datasets written inside the tests (nothing is downloaded), the tiny
config, a step hook and a comparison of two training runs. Fixtures stay in conftest.py, which also sets
the environment (fake CPU devices, compilation cache) before JAX starts."""

import os

import jax
import ml_collections
import numpy as np
from PIL import Image

from unet_flax.data import celebamask_hq
from unet_flax.data import parts as parts_lib

TINY_SYNTHETIC = {'train': 24, 'validation': 6, 'test': 5}

# (CelebA-HQ idx, CelebA orig file number): anno folders 0, 1, 2 and both sides of each boundary.
CELEBA_ROWS = [(0, 162770), (1999, 1), (2000, 162771), (2001, 182637), (4001, 182638), (3, 200000)]
EXPECTED_SPLITS = {'train': {'0', '1999'}, 'validation': {'2000', '2001'}, 'test': {'4001', '3'}}


def write_celebamask_tree(root, rows=CELEBA_ROWS, image_size=64, mask_size=32):
  """A tiny CelebAMask-HQ download: every mask is a rectangle placed by part and index."""
  os.makedirs(os.path.join(root, celebamask_hq.IMG_DIR))
  with open(os.path.join(root, celebamask_hq.MAPPING_FILE), 'w') as f:
    f.write('idx         orig_idx    orig_file\n')
    for idx, orig in rows:
      f.write(f'{idx}  {orig - 1}  {orig:06d}.jpg\n')
  rng = np.random.default_rng(0)
  for idx, _ in rows:
    Image.fromarray(rng.integers(0, 255, (image_size, image_size, 3), np.uint8)).save(
        os.path.join(root, celebamask_hq.IMG_DIR, f'{idx}.jpg'))
    folder = os.path.join(root, celebamask_hq.ANNO_DIR, str(idx // 2000))
    os.makedirs(folder, exist_ok=True)
    for channel, name in enumerate(parts_lib.CELEBAMASK_HQ_PARTS):
      if (idx + channel) % 3 == 0:
        continue  # absent part: no file
      mask = np.zeros((mask_size, mask_size), np.uint8)
      mask[channel:channel + 8, 2:2 + 4 + idx % 5] = 255
      img = Image.fromarray(mask)
      if channel % 2:  # CelebAMask-HQ ships some masks as RGB
        img = img.convert('RGB')
      img.save(os.path.join(folder, f'{idx:05d}_{name}.png'))


def write_folder_tree(root, n=3):
  """A tiny folder-layout dataset: n 32x32 images with masks in each of train/, val/ and test/."""
  for split in ('train', 'val', 'test'):
    for sub in ('images', 'masks'):
      os.makedirs(root / split / sub)
    for i in range(n):
      image = np.full((32, 32, 3), 40 * i % 256, np.uint8)
      Image.fromarray(image).save(root / split / 'images' / f'{i}.jpg')
      mask = np.zeros((32, 32), np.uint8)
      mask[4:12, 4:20] = 255
      Image.fromarray(mask).save(root / split / 'masks' / f'{i}.png')


def garble(step_dir, only=''):
  """Overwrites a checkpoint's files (those whose path contains `only`) with random bytes of the
  same size, as a failing disk or a half-finished copy leaves them."""
  for folder, _, files in os.walk(step_dir):
    for name in files:
      path = os.path.join(folder, name)
      if only in os.path.relpath(path, step_dir):
        with open(path, 'wb') as f:
          f.write(os.urandom(max(16, os.path.getsize(path))))


def dataset_config(config, data_dir, manual_dir=None, **kw):
  return ml_collections.ConfigDict(dict(config=config, data_dir=str(data_dir),
                                        manual_dir=manual_dir and str(manual_dir), **kw))


def config_with(data_dir, **overrides):
  """configs/test.py on the tests' synthetic data_dir, with dotted-key overrides."""
  from configs import test as test_config
  cfg = test_config.get_config()
  cfg.dataset.data_dir = str(data_dir)
  for key, value in overrides.items():
    node = cfg
    *path, leaf = key.split('.')
    for p in path:
      node = node[p]
    node[leaf] = value
  return cfg



def pmap_steps_with_hook(hook):
  """A stand-in for `steps.pmap_steps` whose train step first calls hook(n) on its n-th call
  (n from 1): to send a signal or kill the process at a chosen step."""
  from unet_flax import steps
  real = steps.pmap_steps

  def pmap_steps(*args, **kwargs):
    p_train, p_eval = real(*args, **kwargs)
    calls = []

    def step(state, batch):
      calls.append(1)
      hook(len(calls))
      return p_train(state, batch)
    return step, p_eval
  return pmap_steps


def difference_per_update(after_a, after_b, before) -> float:
  """|a - b| / |b - before|, L2 norms over all leaves: how far apart two runs that should train
  the same ended, against how far training moved them. Measured against the update rather than
  the parameters, since the difference grows with the update (rounding in the gradients), and
  the parameters are mostly their initial values."""
  a, b, start = ([np.asarray(x, np.float64) for x in jax.tree.leaves(t)]
                 for t in (after_a, after_b, before))
  update = np.sqrt(sum(np.sum((y - s) ** 2) for y, s in zip(b, start)))
  assert update > 0, 'training did not move these'
  return float(np.sqrt(sum(np.sum((x - y) ** 2) for x, y in zip(a, b))) / update)
