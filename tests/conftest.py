"""Shared fixtures: tiny datasets made inside the tests (nothing is downloaded)."""

import os

# Several fake CPU devices so pmap is exercised; must be set before JAX starts.
os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=4')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
# The tests compile the same tiny U-Net many times, also in subprocesses: share compilations.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', os.path.join(
    os.path.expanduser('~'), '.cache', 'unet_flax', 'jax_test_cache'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')

import jax  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from unet_flax.data import celebamask_hq  # noqa: E402
from unet_flax.data import dataset as dataset_lib  # noqa: E402
from unet_flax.data import parts as parts_lib

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


@pytest.fixture(scope='session')
def celeba_builder(tmp_path_factory):
  root = tmp_path_factory.mktemp('celebamask_hq_download')
  write_celebamask_tree(str(root))
  data_dir = tmp_path_factory.mktemp('tfds')
  return dataset_lib.prepare(dataset_config('celebamask_hq', data_dir, root))


def test_config_with(data_dir, **overrides):
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


test_config_with.__test__ = False  # a helper, not a test


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


TINY_SYNTHETIC = {'train': 24, 'validation': 6, 'test': 5}


@pytest.fixture(scope='session')
def synthetic_data_dir(tmp_path_factory):
  return tmp_path_factory.mktemp('tfds_synthetic')


@pytest.fixture(scope='session')
def synthetic_builder(synthetic_data_dir):
  return dataset_lib.prepare(dataset_config('synthetic', synthetic_data_dir,
                                            synthetic_sizes=TINY_SYNTHETIC, synthetic_seed=7))


@pytest.fixture(scope='session')
def trained_workdir(tmp_path_factory, synthetic_data_dir, synthetic_builder):
  """A tiny trained run (3 steps of configs/test.py), with its end-of-training pictures."""
  from configs import test as test_config
  from unet_flax import plots, train
  cfg = test_config.get_config()
  cfg.dataset.data_dir = str(synthetic_data_dir)
  cfg.num_train_steps = 3
  workdir = tmp_path_factory.mktemp('trained')
  train.train_and_evaluate(cfg, str(workdir))
  plots.write_all(str(workdir), cfg, num_examples=2)
  return workdir
