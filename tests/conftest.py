"""Shared fixtures: tiny datasets made inside the tests (nothing is downloaded); their helpers are in helpers.py."""

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

import pytest  # noqa: E402

from tests.helpers import TINY_SYNTHETIC, dataset_config, write_celebamask_tree  # noqa: E402
from unet_flax.data import dataset as dataset_lib  # noqa: E402


@pytest.fixture(scope='session')
def celeba_builder(tmp_path_factory):
  root = tmp_path_factory.mktemp('celebamask_hq_download')
  write_celebamask_tree(str(root))
  data_dir = tmp_path_factory.mktemp('tfds')
  return dataset_lib.prepare(dataset_config('celebamask_hq', data_dir, root))


@pytest.fixture(scope='session')
def synthetic_data_dir(tmp_path_factory):
  return tmp_path_factory.mktemp('tfds_synthetic')


@pytest.fixture(scope='session')
def synthetic_builder(synthetic_data_dir):
  return dataset_lib.prepare(dataset_config('synthetic', synthetic_data_dir,
                                            synthetic_sizes=TINY_SYNTHETIC, synthetic_seed=7))


@pytest.fixture(scope='session')
def trained_workdir(tmp_path_factory, synthetic_data_dir, synthetic_builder):
  """A tiny trained run (3 steps of configs/test.py), with its end-of-training pictures. It also
  learns the eyes in a second output channel (config.auxiliary_target), so that the export and
  prediction tests check that every path leaves that channel out."""
  from configs import test as test_config
  from unet_flax import plots, train
  cfg = test_config.get_config()
  cfg.dataset.data_dir = str(synthetic_data_dir)
  cfg.num_train_steps = 3
  cfg.auxiliary_target = 'eyes'
  workdir = tmp_path_factory.mktemp('trained')
  train.train_and_evaluate(cfg, str(workdir))
  plots.write_all(str(workdir), cfg, num_examples=2)
  return workdir
