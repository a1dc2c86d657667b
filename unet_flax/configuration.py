"""Checks a whole experiment config before anything is built, written or trained.

`validate` reports every bad field at once (types, ranges, names, batch sizes that do
not split over the devices, a `best_metric` the target does not report) as one
`ConfigError`, and fills `best_metric` from the target when it is empty. `upgrade` turns the
config a run recorded (config.json, or an exported model's card) into a whole config of today.
"""

from __future__ import annotations

import math

import ml_collections

from unet_flax import appearance, losses, steps
from unet_flax import metrics as metrics_lib
from unet_flax import model as model_lib
from unet_flax.data import parts as parts_lib
from unet_flax.errors import ConfigError
from unet_flax.runtime import batch_divisibility_problem


def upgrade(recorded: dict) -> ml_collections.ConfigDict:
  """A recorded config with every field added to `configs/base.py` since it was written, at its
  default there: a field arrives with the old behaviour as its default (painting_order (), model.kind
  'unet', optimizer.beta1 0.9, loss.pos_weight 1, loss.focal_*), so an old run reads as it trained.
  Done once, on load, so code reads every field directly, for old runs as for new."""
  from configs import base  # configs/ imports nothing of ours: no cycle, and it is installed with us

  def merged(defaults: dict, values: dict) -> dict:
    out = dict(defaults)
    for key, value in values.items():
      both_dicts = isinstance(value, dict) and isinstance(defaults.get(key), dict)
      out[key] = merged(defaults[key], value) if both_dicts else value
    return out

  return ml_collections.ConfigDict(merged(base.get_config().to_dict(), recorded))


def _number_problems(config) -> list[str]:
  """(field, value, test, what it must be) for every numeric field."""
  c = config
  rules = [
      ('seed', c.seed, lambda v: isinstance(v, int) and v >= 0, 'an integer >= 0'),
      ('model.image_size', c.model.image_size,
       lambda v: isinstance(v, int) and v >= 2 ** c.model.depth and v % 2 ** c.model.depth == 0,
       f'a positive multiple of 2**depth = {2 ** c.model.depth}'),
      ('model.base_features', c.model.base_features, lambda v: isinstance(v, int) and v > 0, '> 0'),
      ('model.depth', c.model.depth, lambda v: isinstance(v, int) and 1 <= v <= 8, 'between 1 and 8'),
      ('model.dropout', c.model.dropout, lambda v: 0 <= v < 1, 'in [0, 1)'),
      ('loss.pos_weight', c.loss.pos_weight, lambda v: v > 0, '> 0'),
      ('loss.focal_gamma', c.loss.focal_gamma, lambda v: v >= 0, '>= 0'),
      ('loss.focal_alpha', c.loss.focal_alpha, lambda v: 0 <= v <= 1, 'in [0, 1]'),
      ('loss.auxiliary_weight', c.loss.auxiliary_weight, lambda v: v >= 0, '>= 0'),
      ('optimizer.learning_rate', c.optimizer.learning_rate, lambda v: 0 < v < 10, 'in (0, 10)'),
      ('optimizer.warmup_steps', c.optimizer.warmup_steps, lambda v: isinstance(v, int) and v >= 0, '>= 0'),
      ('optimizer.weight_decay', c.optimizer.weight_decay, lambda v: v >= 0, '>= 0'),
      ('optimizer.momentum', c.optimizer.momentum, lambda v: 0 <= v < 1, 'in [0, 1)'),
      ('optimizer.beta1', c.optimizer.beta1, lambda v: 0 <= v < 1, 'in [0, 1)'),
      ('gan.l1_weight', c.gan.l1_weight, lambda v: v >= 0, '>= 0'),
      ('gan.disc_features', c.gan.disc_features, lambda v: isinstance(v, int) and v > 0, '> 0'),
      ('optimizer.grad_clip_norm', c.optimizer.grad_clip_norm, lambda v: v >= 0, '>= 0 (0 = off)'),
      ('augment.rotation_degrees', c.augment.rotation_degrees, lambda v: 0 <= v <= 180, 'in [0, 180]'),
      ('augment.brightness', c.augment.brightness, lambda v: 0 <= v <= 1, 'in [0, 1]'),
      ('augment.contrast', c.augment.contrast, lambda v: 0 <= v <= 1, 'in [0, 1]'),
      ('augment.saturation', c.augment.saturation, lambda v: 0 <= v <= 1, 'in [0, 1]'),
      ('augment.scale_range', tuple(c.augment.scale_range),
       lambda v: len(v) == 2 and 0 < v[0] <= v[1] <= 4, 'a pair (low, high) with 0 < low <= high <= 4'),
      *[(f'augment.{o}', c.augment[o], lambda v: 0 <= v <= 1, 'a probability in [0, 1]')
        for o in appearance.OPTIONS],
      ('augment.amplitude_mix_strength', c.augment.amplitude_mix_strength, lambda v: 0 <= v <= 1, 'in [0, 1]'),
      ('augment.randconv_kernels', tuple(c.augment.randconv_kernels),
       lambda v: len(v) > 0 and all(isinstance(k, int) and k > 0 and k % 2 for k in v), 'odd sizes, e.g. (1, 3, 5)'),
      ('num_epochs', c.num_epochs, lambda v: isinstance(v, int) and v >= 0, 'an integer >= 0'),
      ('num_train_steps', c.num_train_steps, lambda v: isinstance(v, int) and v >= 0,
       'an integer >= 0 (0 = use num_epochs)'),
      ('log_every_steps', c.log_every_steps, lambda v: isinstance(v, int) and v > 0, '> 0'),
      ('eval_every_steps', c.eval_every_steps, lambda v: isinstance(v, int) and v > 0, '> 0'),
      ('checkpoint_every_steps', c.checkpoint_every_steps, lambda v: isinstance(v, int) and v > 0, '> 0'),
      ('keep_checkpoints', c.keep_checkpoints, lambda v: isinstance(v, int) and v >= 1, '>= 1'),
  ]
  problems = []
  for field, value, ok, what in rules:
    try:
      good = not isinstance(value, bool) and ok(value) and (
          not isinstance(value, float) or math.isfinite(value))
    except TypeError:
      good = False
    if not good:
      problems.append(f'config.{field}={value!r} must be {what}')
  if c.num_epochs == 0 and c.num_train_steps == 0:
    problems.append('config.num_epochs and config.num_train_steps are both 0: nothing to train; '
                    'set one of them')
  return problems


def _name_problems(config) -> list[str]:
  """The named choices, checked by the functions that build them (one list of names each)."""
  problems = []
  for build in (lambda: model_lib.from_config(config.model, 1),
                lambda: losses.make_loss(config.loss),
                lambda: steps.make_optimizer(config.optimizer, 10)):
    try:
      build()
    except ConfigError as e:
      problems.append(str(e).rstrip('.'))
  return problems


def _flip_problems(config) -> list[str]:
  """A horizontal flip mislabels a binary target (or auxiliary target) with one side of a
  left/right pair and not the other. The dataset's parts follow from its config, so this needs
  no built dataset."""
  problems = []
  for field in ('target', 'auxiliary_target'):
    if not config[field]:
      continue
    try:
      safe = parts_lib.flip_safe(config[field], parts_lib.dataset_parts(config.dataset.config))
    except parts_lib.TargetError:
      continue  # a part the dataset lacks: reported by the check that builds the target
    if not safe:
      problems.append(f'config.{field}={config[field]!r} is not left/right symmetric, so a horizontal '
                      f'flip would mislabel it; add the mirrored parts or set config.augment.hflip=False')
  return problems


def _auxiliary_problems(config, classes: int) -> list[str]:
  """An auxiliary target needs a binary target, the U-Net, and parts the dataset has."""
  aux = config.auxiliary_target
  if not aux:
    return []
  if classes > 1 or config.model.kind != 'unet':
    return [f'config.auxiliary_target={aux!r} needs a binary target and model.kind=unet '
            f'(config.target={config.target!r}, model.kind={config.model.kind!r}); set it to \'\'']
  part_names = parts_lib.dataset_parts(config.dataset.config)
  try:
    parts_lib.resolve_binary_parts(aux, part_names)
  except parts_lib.TargetError:
    return [f'config.auxiliary_target={aux!r} names parts dataset {config.dataset.config!r} does not '
            f'have (it has {list(part_names)}); use {sorted(parts_lib.BINARY_TARGETS)} or part names, '
            f'or \'\' for none']
  return []


def validate(config, devices: int, hosts: int = 1) -> None:
  """Raises one ConfigError naming every bad field; fills an empty `best_metric`."""
  problems = _number_problems(config) + _name_problems(config)
  problems += [problem for field in ('batch_size', 'eval_batch_size')
               if (problem := batch_divisibility_problem(field, config[field], devices, hosts))]
  classes = parts_lib.num_classes(config.target)
  if config.model.kind not in steps.KINDS:
    problems.append(f'config.model.kind={config.model.kind!r}: use one of {list(steps.KINDS)}')
  elif config.model.kind == 'pix2pix' and classes > 1:
    problems.append(f'config.model.kind=pix2pix makes one binary mask; config.target={config.target!r} '
                    f'has {classes} classes')
  problems += _auxiliary_problems(config, classes)
  if config.augment.enabled and config.augment.hflip:
    problems += _flip_problems(config)
  if config.gan.output not in ('sigmoid', 'tanh'):
    problems.append(f'config.gan.output={config.gan.output!r}: use sigmoid or tanh')
  if classes == 1 and config.loss.name == 'balanced_ce_dice':
    problems.append(f'config.loss.name={config.loss.name!r} balances the classes of face parsing; '
                    f'config.target={config.target!r} is binary: use bce_dice (or loss.pos_weight)')
  if classes > 1 and config.loss.name in ('bce', 'focal'):
    problems.append(f'config.loss.name={config.loss.name!r} is for binary targets; '
                    f'config.target={config.target!r} needs cross_entropy, dice or bce_dice')
  reported = metrics_lib.metric_names(classes)
  if not config.best_metric:
    config.best_metric = metrics_lib.default_best_metric(classes)
  elif config.best_metric not in reported:
    problems.append(f'config.best_metric={config.best_metric!r} is not reported for '
                    f'config.target={config.target!r}; use one of {list(reported)} or leave it '
                    f'empty to use {metrics_lib.default_best_metric(classes)!r}')
  if problems:
    raise ConfigError('; '.join(problems) + '.')
