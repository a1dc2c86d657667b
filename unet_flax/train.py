"""Training and evaluation: pure step functions and the `train_and_evaluate` loop.

The steps take a state and a per-device batch and use collectives over
`axis_name`; replication lives only in `pmap_steps`, so moving to `jax.jit`
with shardings changes that one function.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm
from flax.training import train_state

from unet_flax import augment, checkpoints, losses, metrics as metrics_lib, model as model_lib, workdir as workdir_lib
from unet_flax.data import dataset as dataset_lib, parts as parts_lib, pipeline

AXIS = 'batch'


class TrainState(train_state.TrainState):
  batch_stats: Any = None


class NonFiniteError(RuntimeError):
  """Loss or gradient norm became NaN/inf."""


def make_optimizer(opt_cfg, total_steps: int) -> optax.GradientTransformation:
  lr = opt_cfg.learning_rate
  if opt_cfg.schedule == 'constant':
    schedule = optax.constant_schedule(lr)
  elif opt_cfg.schedule == 'warmup_cosine':
    warmup = min(opt_cfg.warmup_steps, max(total_steps - 1, 0))
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(total_steps, warmup + 1))
  else:
    raise ValueError(f'config.optimizer.schedule={opt_cfg.schedule!r}: use constant or warmup_cosine.')
  makers = {
      'adam': lambda: optax.adam(schedule),
      'adamw': lambda: optax.adamw(schedule, weight_decay=opt_cfg.weight_decay),
      'sgd': lambda: optax.sgd(schedule, momentum=opt_cfg.momentum, nesterov=True),
  }
  if opt_cfg.name not in makers:
    raise ValueError(f'config.optimizer.name={opt_cfg.name!r}: use one of {sorted(makers)}.')
  tx = makers[opt_cfg.name]()
  if opt_cfg.grad_clip_norm:
    tx = optax.chain(optax.clip_by_global_norm(opt_cfg.grad_clip_norm), tx)
  return tx


def create_train_state(rng, model, image_size: int, tx) -> TrainState:
  variables = jax.jit(functools.partial(model.init, train=False))(
      rng, jnp.zeros((1, image_size, image_size, 3), jnp.float32))
  return TrainState.create(apply_fn=model.apply, params=variables['params'], tx=tx,
                           batch_stats=variables.get('batch_stats'))


def _apply(state, params, images, train, rng=None):
  variables = {'params': params}
  if state.batch_stats is not None:
    variables['batch_stats'] = state.batch_stats
  mutable = ['batch_stats'] if train and state.batch_stats is not None else False
  out = state.apply_fn(variables, images, train=train, rngs={'dropout': rng} if train else None,
                       mutable=mutable)
  return out if mutable else (out, {})


def per_example_loss(loss_fn, logits, labels):
  return jax.vmap(lambda l, y: loss_fn(l[None], y[None], jnp.ones((1,))))(logits, labels)


def train_step(state: TrainState, batch, *, loss_fn, config, mirror_label_map, axis_name=AXIS):
  """One optimiser step on this device's batch; gradients are averaged over `axis_name`.

  A non-finite loss or gradient leaves the state unchanged and is reported in
  the metrics, so the caller can stop with the last good state.
  """
  key = jax.random.fold_in(jax.random.fold_in(jax.random.key(config.seed), state.step),
                           jax.lax.axis_index(axis_name))
  aug_key, dropout_key = jax.random.split(key)
  images, labels = augment.resize(batch['image'], batch['label'], config.model.image_size)
  if config.augment.enabled:
    images, labels = augment.augment(aug_key, images, labels, config.augment, mirror_label_map)
  weights = jnp.ones(images.shape[0], jnp.float32)

  def loss_and_logits(params):
    logits, updates = _apply(state, params, images, True, dropout_key)
    return loss_fn(logits, labels, weights), (logits, updates)

  (loss, (logits, updates)), grads = jax.value_and_grad(loss_and_logits, has_aux=True)(state.params)
  grads = jax.lax.pmean(grads, axis_name)
  grad_norm = optax.global_norm(grads)
  new_state = state.apply_gradients(grads=grads)
  finite = (jnp.isfinite(jax.lax.pmean(loss, axis_name)) & jnp.isfinite(grad_norm)
            & jnp.isfinite(optax.global_norm(new_state.params)))
  if updates:
    new_state = new_state.replace(batch_stats=jax.lax.pmean(updates['batch_stats'], axis_name))
  new_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old), new_state, state)
  step_metrics = metrics_lib.SegmentationMetrics.gather_from_model_output(
      axis_name=axis_name, **metrics_lib.model_outputs(
          logits, labels, jnp.ones(images.shape[0], bool), per_example_loss(loss_fn, logits, labels)))
  return new_state, step_metrics, {'grad_norm': grad_norm, 'finite': finite}


def eval_step(state: TrainState, batch, *, loss_fn, config, axis_name=AXIS):
  images, labels = augment.resize(batch['image'], batch['label'], config.model.image_size)
  logits, _ = _apply(state, state.params, images, False)
  return metrics_lib.SegmentationMetrics.gather_from_model_output(
      axis_name=axis_name, **metrics_lib.model_outputs(
          logits, labels, batch['valid'], per_example_loss(loss_fn, logits, labels)))


@functools.partial(jax.jit, static_argnames='image_size')
def predict_step(state: TrainState, images, *, image_size):
  """Logits for [B, H, W, 3] float images, at the model's input size."""
  images, _ = augment.resize(images, jnp.zeros(images.shape[:3], jnp.int32), image_size)
  return _apply(state, state.params, images, False)[0]


def pmap_steps(loss_fn, config, mirror_label_map):
  """Train and eval steps pmapped over local devices. The state is passed and returned
  replicated (in_axes/out_axes None) and donated to the train step."""
  train = jax.pmap(functools.partial(train_step, loss_fn=loss_fn, config=config,
                                     mirror_label_map=jnp.asarray(mirror_label_map)),
                   axis_name=AXIS, in_axes=(None, 0), out_axes=(None, None, None),
                   # Across processes, pmap hands the donated replicated state back as the
                   # output's buffers and then frees them ("Array has been deleted").
                   donate_argnums=(0,) if jax.process_count() == 1 else ())
  evaluate = jax.pmap(functools.partial(eval_step, loss_fn=loss_fn, config=config),
                      axis_name=AXIS, in_axes=(None, 0), out_axes=None)
  return train, evaluate


def evaluate(p_eval_step, state, split, target_maker, config) -> metrics_lib.SegmentationMetrics:
  total = None
  batches = pipeline.eval_iterator(split, target_maker, global_batch_size=config.eval_batch_size)
  batches = tqdm.tqdm(batches, total=pipeline.eval_num_batches(split, config.eval_batch_size),
                      desc='eval', leave=False, disable=jax.process_index() != 0)
  for batch in batches:
    batch_metrics = metrics_lib.to_host(p_eval_step(state, batch))
    total = batch_metrics if total is None else total.merge(batch_metrics)
  return total


def examples_at_model_size(split, target_maker, count: int, image_size: int):
  """The first `count` examples of a split as (float images, labels) resized to the model input."""
  images, labels = split.examples(target_maker, range(min(count, len(split))))
  return tuple(np.asarray(a) for a in augment.resize(images, labels, image_size))


def prediction_strip(state, split, target_maker, config, count: int = 4) -> np.ndarray:
  """[count, H, 3W, 3] uint8: image | ground truth | prediction, for TensorBoard."""
  from unet_flax import plots
  images, labels = examples_at_model_size(split, target_maker, count, config.model.image_size)
  logits = predict_step(state, images, image_size=config.model.image_size)
  preds, k = np.asarray(losses.predicted_labels(logits)), logits.shape[-1]
  return np.stack([np.concatenate([(im * 255).astype(np.uint8), plots.colourize(y, k), plots.colourize(p, k)], 1)
                   for im, y, p in zip(images, labels, preds)])


class Experiment:
  """Everything a config resolves to: dataset splits, target, model, steps."""

  def __init__(self, config):
    self.config = config
    self.builder = dataset_lib.prepare(config.dataset)
    self.train_split = pipeline.open_split(self.builder, 'train')
    part_names = self.train_split.part_names
    self.target = parts_lib.TargetMaker(config.target, part_names, config.get('painting_order') or None)
    if config.augment.enabled and config.augment.hflip and not getattr(self.target, 'flip_safe', True):
      raise parts_lib.TargetError(
          f'config.target={config.target!r} is not left/right symmetric, so a horizontal flip would '
          f'mislabel it; add the mirrored parts or set config.augment.hflip=False.')
    self.class_names = parts_lib.class_names(config.target, part_names)
    binary_only = ('bce', 'focal')
    if self.target.num_classes > 1 and config.loss.name in binary_only:
      raise ValueError(f'config.loss.name={config.loss.name!r} is for binary targets; face parsing '
                       f'uses cross_entropy, dice or bce_dice.')
    self.model = model_lib.from_config(config.model, self.target.num_classes)
    self.loss_fn = losses.make_loss(config.loss)
    self.steps_per_epoch = len(self.train_split) // config.batch_size
    self.total_steps = config.num_train_steps or config.num_epochs * self.steps_per_epoch
    self.tx = make_optimizer(config.optimizer, self.total_steps)

  def split(self, name):
    return pipeline.open_split(self.builder, name)

  def initial_state(self):
    return create_train_state(jax.random.key(self.config.seed), self.model,
                              self.config.model.image_size, self.tx)


def train_and_evaluate(config, workdir: str) -> dict[str, float]:
  """Trains (resuming from `workdir` if it holds checkpoints); returns the last validation metrics."""
  exp = Experiment(config)
  workdir_lib.record_start(workdir, config, exp.builder)
  writer = workdir_lib.MetricWriter(workdir)
  p_train, p_eval = pmap_steps(exp.loss_fn, config, exp.target.mirror_label_map)
  train_iter = pipeline.train_iterator(exp.train_split, exp.target, global_batch_size=config.batch_size,
                                       seed=config.seed)
  manager = checkpoints.Manager(workdir, config)
  state = exp.initial_state()
  if manager.latest_step() is not None:
    state, iter_state = manager.restore(state, 'latest')
    train_iter.set_state(iter_state)
    logging.info('Resumed from step %d in %s.', int(state.step), workdir)
  validation = exp.split('validation')
  step = int(state.step)
  progress = workdir_lib.Progress(exp.total_steps, start_step=step)
  train_metrics, all_finite, last_eval = None, True, {}
  start = time.time()
  while step < exp.total_steps:
    state, step_metrics, health = p_train(state, next(train_iter))
    step += 1
    # Merged on the device: no host sync between logging steps.
    train_metrics = step_metrics if train_metrics is None else train_metrics.merge(step_metrics)
    all_finite = jnp.logical_and(all_finite, health['finite'])
    is_last = step == exp.total_steps
    if step % config.log_every_steps == 0 or is_last:
      _check_finite(all_finite, step, manager)
      writer.write(step, 'train', {**metrics_lib.summarize(metrics_lib.to_host(train_metrics), exp.class_names),
                                   'grad_norm': float(health['grad_norm'])})
      train_metrics = None
    progress(step)
    if step % config.eval_every_steps == 0 or is_last:
      _check_finite(all_finite, step, manager)
      last_eval = metrics_lib.summarize(evaluate(p_eval, state, validation, exp.target, config),
                                        exp.class_names)
      writer.write(step, 'validation', last_eval)
      writer.write_images(step, {'validation/image_truth_prediction': prediction_strip(
          state, validation, exp.target, config)})
      manager.save(step, state, train_iter.get_state(), last_eval)
    elif step % config.checkpoint_every_steps == 0:
      _check_finite(all_finite, step, manager)
      manager.save(step, state, train_iter.get_state())
  manager.close()
  writer.write(step, 'summary', {'wall_seconds': time.time() - start, 'steps': step})
  writer.close()
  return last_eval


def _check_finite(all_finite, step, manager):
  if not bool(all_finite):
    raise NonFiniteError(
        f'Loss or gradient norm became non-finite by step {step}; the update was not applied. '
        f'The last good checkpoint is step {manager.latest_step()} in {manager.directory}. '
        f'Lower config.optimizer.learning_rate or set config.optimizer.grad_clip_norm, then rerun '
        f'to resume from it.')


def evaluate_checkpoint(config, workdir: str, checkpoint: str = 'best', split: str = 'test') -> dict:
  """Restores `checkpoint` (best | latest | STEP) from `workdir` and evaluates `split`."""
  exp = Experiment(config)
  manager = checkpoints.Manager(workdir, config, read_only=True)
  state, _ = manager.restore(exp.initial_state(), checkpoint)
  _, p_eval = pmap_steps(exp.loss_fn, config, exp.target.mirror_label_map)
  result = metrics_lib.summarize(evaluate(p_eval, state, exp.split(split), exp.target, config),
                                 exp.class_names)
  return {'step': int(state.step), 'split': split, 'checkpoint': checkpoint, **result}
