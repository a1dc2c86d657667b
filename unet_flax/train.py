"""The training loop (`train_and_evaluate`) and checkpoint evaluation, over `steps`."""

from __future__ import annotations

import logging
import time

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from unet_flax import checkpoints, losses, metrics as metrics_lib, model as model_lib, pictures
from unet_flax import workdir as workdir_lib
from unet_flax.data import dataset as dataset_lib, parts as parts_lib, pipeline
from unet_flax.steps import create_train_state, make_optimizer, pmap_steps, predict_step

class NonFiniteError(RuntimeError):
  """Loss or gradient norm became NaN/inf."""


def evaluate(p_eval_step, state, split, target_maker, config) -> metrics_lib.SegmentationMetrics:
  total = None
  batches = pipeline.eval_iterator(split, target_maker, global_batch_size=config.eval_batch_size)
  batches = tqdm.tqdm(batches, total=pipeline.eval_num_batches(split, config.eval_batch_size),
                      desc='eval', leave=False, disable=jax.process_index() != 0)
  for batch in batches:
    batch_metrics = metrics_lib.to_host(p_eval_step(state, batch))
    total = batch_metrics if total is None else total.merge(batch_metrics)
  return total


def prediction_strip(state, split, target_maker, config, count: int = 4) -> np.ndarray:
  """[count, H, 3W, 3] uint8: image | ground truth | prediction, for TensorBoard."""
  images, labels = pipeline.examples_at_model_size(split, target_maker, count, config.model.image_size)
  logits = predict_step(state, images, image_size=config.model.image_size)
  preds, k = np.asarray(losses.predicted_labels(logits)), logits.shape[-1]
  return np.stack([np.concatenate([(im * 255).astype(np.uint8), pictures.colourize(y, k), pictures.colourize(p, k)], 1)
                   for im, y, p in zip(images, labels, preds)])


class Experiment:
  """Everything a config resolves to: dataset splits, target, model, steps."""

  def __init__(self, config):
    self.config = config
    self.builder = dataset_lib.prepare_once(config.dataset)
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
