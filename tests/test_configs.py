"""Every config in configs/ builds and traces: model, loss, optimiser, target and train step."""

import functools
import glob
import importlib
import os

import jax
import jax.numpy as jnp
import pytest

from unet_flax import configuration, losses, steps
from unet_flax import metrics as metrics_lib
from unet_flax.data import parts as parts_lib
from unet_flax.data.face_segmentation import Builder

CONFIGS = sorted(os.path.splitext(os.path.basename(p))[0]
                 for p in glob.glob(os.path.join(os.path.dirname(__file__), '..', 'configs', '*.py'))
                 if not p.endswith('__init__.py'))


def test_all_expected_configs_exist():
  assert {'base', 'quick', 'test', 'eyes', 'lips_eyes', 'face_parsing', 'face_parsing_cpu'} <= set(CONFIGS)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds_and_traces(name):
  module = importlib.import_module(f'configs.{name}')
  assert 'python -m experiments.main' in module.__doc__ or './run.sh' in module.__doc__
  cfg = module.get_config()
  assert cfg.dataset.config in {c.name for c in Builder.BUILDER_CONFIGS}
  part_names = parts_lib.dataset_parts(cfg.dataset.config)
  target = parts_lib.training_target(cfg, part_names)
  model = steps.make_unet(cfg, target.num_classes)
  loss_fn = losses.make_loss(cfg.loss)
  tx = steps.make_optimizer(cfg.optimizer, 1000)
  size = cfg.model.image_size
  state = jax.eval_shape(lambda: steps.create_train_state(jax.random.key(0), model, size, tx))
  batch = {'image': jax.ShapeDtypeStruct((1, 2, 256, 256, 3), jnp.float32),
           'label': jax.ShapeDtypeStruct((1, 2, 256, 256), jnp.uint8)}
  step = jax.vmap(functools.partial(steps.train_step, loss_fn=loss_fn, config=cfg,
                                    mirror_label_map=jnp.asarray(target.mirror_label_map)),
                  in_axes=(None, 0), axis_name=steps.AXIS)
  new_state, _, health = jax.eval_shape(step, state, batch)
  # vmap stacks its one-element axis onto the outputs.
  assert jax.tree.map(lambda a: a.shape[1:], new_state.params) == jax.tree.map(lambda a: a.shape, state.params)
  assert health['finite'].dtype == jnp.bool_
  configuration.validate(cfg, devices=1)  # every field in range; best_metric filled from the target
  assert cfg.best_metric in metrics_lib.metric_names(target.num_classes)
