"""The training loop (`train_and_evaluate`) and checkpoint evaluation, over `steps`.

A run is safe to stop and to repeat: the config is checked before anything is written;
the workdir is locked and must hold the same experiment; SIGINT/SIGTERM save a
checkpoint at the current step and end with `Interrupted`; a non-finite step is rolled
back and stops the run naming the last committed checkpoint; wall time and the partial
train-metrics window are checkpointed, so a resumed run reports what an uninterrupted
one would.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from unet_flax import checkpoints, configuration, losses, metrics_log, pictures
from unet_flax import metrics as metrics_lib
from unet_flax import workdir as workdir_lib
from unet_flax.data import dataset as dataset_lib
from unet_flax.data import parts as parts_lib
from unet_flax.data import pipeline
from unet_flax.errors import UserError
from unet_flax.steps import create_state, pmap_steps, predict_step


class NonFiniteError(UserError):
  """Loss, gradients or the updated state became NaN/inf; the bad update was not applied."""


class Interrupted(UserError):
  """SIGINT or SIGTERM stopped training after saving a checkpoint."""

  def __init__(self, message: str, signal_number: int):
    super().__init__(message)
    self.exit_code = 128 + signal_number


def evaluate(p_eval_step, state, split, target_maker, config) -> dict[str, metrics_lib.SegmentationMetrics]:
  """Every example of `split` exactly once: {'label_size': metrics[, 'model_size': metrics]}."""
  totals = {}
  batches = pipeline.eval_iterator(split, target_maker, global_batch_size=config.eval_batch_size)
  batches = tqdm.tqdm(batches, total=pipeline.eval_num_batches(split, config.eval_batch_size),
                      desc='eval', leave=False, disable=jax.process_index() != 0)
  for batch in batches:
    for name, batch_metrics in p_eval_step(state, batch).items():
      if batch_metrics is not None:
        batch_metrics = metrics_lib.to_host(batch_metrics)
        totals[name] = batch_metrics if name not in totals else totals[name].merge(batch_metrics)
  return totals


def summarize_eval(totals: dict, class_names) -> dict:
  """Scores at the label resolution as the headline; at the model's size under 'model_size/'."""
  out = metrics_lib.summarize(totals['label_size'], class_names)
  if 'model_size' in totals:
    out.update({f'model_size/{k}': v for k, v in metrics_lib.summarize(
        totals['model_size'], class_names).items()})
  return out


def prediction_strip(state, split, target_maker, config, class_names, count: int = 4) -> np.ndarray:
  """[count, H, 3W (+ legend), 3] uint8: image | ground truth | prediction, for TensorBoard;
  face parsing adds the class legend."""
  images, labels = pipeline.examples_at_model_size(split, target_maker, count, config.model.image_size)
  logits = predict_step(state, images, image_size=config.model.image_size)
  preds, k = np.asarray(losses.predicted_labels(logits)), logits.shape[-1]
  rows = [np.concatenate([(im * 255).astype(np.uint8), pictures.colourize(y, k), pictures.colourize(p, k)], 1)
          for im, y, p in zip(images, labels, preds)]
  return np.stack([pictures.with_legend(r, class_names) if k > 1 else r for r in rows])


class Experiment:
  """Everything a config resolves to: dataset splits, target, model, steps. The config is
  validated first, before the dataset is built."""

  def __init__(self, config):
    configuration.validate(config, jax.device_count(), jax.process_count())
    self.config = config
    self.builder = dataset_lib.prepare_once(config.dataset)
    self.train_split = pipeline.open_split(self.builder, 'train')
    part_names = self.train_split.part_names
    self.target = parts_lib.TargetMaker.from_config(config, part_names)
    self.training_target = parts_lib.training_target(config, part_names)
    self.class_names = parts_lib.class_names(config.target, part_names)
    self.loss_fn = losses.make_loss(config.loss)
    self.total_steps = config.num_train_steps or config.num_epochs * (len(self.train_split) // config.batch_size)
    self.dataset = dataset_lib.identity(self.builder)

  def split(self, name):
    return pipeline.open_split(self.builder, name)

  def initial_state(self):
    """A TrainState, or a GanState (generator and discriminator) for config.model.kind=pix2pix."""
    return create_state(jax.random.key(self.config.seed), self.config, self.target.num_classes,
                        self.total_steps)


class StopSignals:
  """While active, SIGINT and SIGTERM only set `received`; the loop saves and stops at the
  next step. A second Ctrl-C stops at once (KeyboardInterrupt)."""

  def __init__(self):
    self.received = None
    self._previous = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGINT, signal.SIGTERM):
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    if self.received is not None and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.received = signum
    print(f'\n{signal.Signals(signum).name} received: saving a checkpoint at the current step '
          f'(Ctrl-C again to stop without saving).', flush=True)

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)

  def agreed(self, step: int, config) -> int | None:
    """The signal to stop on, the same on every process. Across processes the hosts agree at
    log steps only (a collective per step would cost more than the step on CPU hosts)."""
    if jax.process_count() == 1:
      return self.received
    if step % config.log_every_steps:
      return None
    from jax.experimental import multihost_utils
    signals = multihost_utils.process_allgather(np.int32(self.received or 0))
    return int(np.max(signals)) or None


def _progress(wall_seconds: float, train_metrics) -> dict:
  """What a checkpoint keeps besides the state, as JSON."""
  leaves = None if train_metrics is None else [
      np.asarray(x).tolist() for x in jax.tree.leaves(metrics_lib.to_host(train_metrics))]
  return {'wall_seconds': wall_seconds, 'train_window': leaves}


def _window_from(progress: dict):
  if not progress.get('train_window'):
    return None
  return metrics_lib.from_leaves([np.asarray(x, np.float64) for x in progress['train_window']])


def train_and_evaluate(config, workdir: str | os.PathLike) -> dict[str, float]:
  """Trains (resuming from `workdir` if it holds checkpoints); returns the last validation metrics."""
  exp = Experiment(config)
  # Every exit path (an error, a signal) releases the lock, finishes in-flight saves and
  # flushes the metric writers.
  run = workdir_lib.Workdir(workdir)
  with run.lock(), checkpoints.Manager(run, config) as manager, StopSignals() as signals:
    changes = run.check_same_experiment(config, exp.dataset, manager.has_checkpoints())
    run.record_start(config, exp.dataset, changes, exp.builder)
    with run.metric_writer() as writer:
      return _train(exp, run, manager, signals, writer)


@dataclasses.dataclass(frozen=True)
class Due:
  """What a step owes before the next one: the loop's one sync point acts on it."""
  log: bool
  evaluate: bool
  checkpoint: bool
  stop: int | None  # the signal to stop on

  @classmethod
  def at(cls, step: int, total: int, config, received: int | None) -> 'Due':
    is_last = step == total
    return cls(log=step % config.log_every_steps == 0 or is_last,
               evaluate=step % config.eval_every_steps == 0 or is_last,
               checkpoint=step % config.checkpoint_every_steps == 0,
               stop=None if is_last else received)

  @property
  def any(self) -> bool:
    return self.log or self.evaluate or self.checkpoint or self.stop is not None


def _train(exp: Experiment, run: workdir_lib.Workdir, manager: checkpoints.Manager, signals: StopSignals,
           writer: metrics_log.MetricWriter) -> dict:
  config = exp.config
  p_train, p_eval = pmap_steps(exp.loss_fn, config, exp.training_target.mirror_label_map)
  train_iter = pipeline.train_iterator(exp.train_split, exp.training_target, global_batch_size=config.batch_size,
                                       seed=config.seed)
  state, progress = exp.initial_state(), {}
  if manager.has_checkpoints():  # damaged ones too: falls back, or says that none restores
    state, iter_state, progress = manager.restore(state, 'latest', with_progress=True)
    train_iter.set_state(iter_state)
    print(f'Resumed from step {int(state.step)} in {run.path}.', flush=True)
  validation = exp.split('validation')
  step = int(state.step)
  saved_step = step if manager.has_checkpoints() else None  # resumed from a checkpoint at `step`
  ticker = metrics_log.Progress(exp.total_steps, start_step=step)
  train_metrics, all_finite, last_eval = _window_from(progress), True, {}
  wall_before, start = progress.get('wall_seconds', 0.0), time.time()
  wall = lambda: wall_before + time.time() - start
  # XLA:CPU runs every device's half of a step on one small thread pool (a thread per core);
  # the aborts seen on 2 cores were a device waiting in a collective the other never reached
  # (docs/training.md, "A crash on CPU"). So there, one step is in flight at a time and the
  # devices start each step together (no measurable cost: docs/benchmarks.md).
  one_step_in_flight = jax.default_backend() == 'cpu' and jax.local_device_count() > 1

  def validate():
    result = summarize_eval(evaluate(p_eval, state, validation, exp.target, config), exp.class_names)
    writer.write(step, 'validation', result)
    writer.write_images(step, {'validation/image_truth_prediction': prediction_strip(
        state, validation, exp.target, config, exp.class_names)})
    return result

  while step < exp.total_steps:
    state, step_metrics, health = p_train(state, next(train_iter))
    if one_step_in_flight:
      health['finite'].block_until_ready()
    step += 1
    # Merged on the device: apart from the wait above, the host waits only at the sync point below.
    train_metrics = step_metrics if train_metrics is None else train_metrics.merge(step_metrics)
    all_finite = jnp.logical_and(all_finite, health['finite'])
    ticker(step)
    due = Due.at(step, exp.total_steps, config, signals.agreed(step, config))
    if not due.any:
      continue
    _check_finite(all_finite, step, manager)
    if due.log:  # plus the step's health scalars: grad_norm, and the GAN's parts of its losses
      writer.write(step, 'train', {**metrics_lib.summarize(metrics_lib.to_host(train_metrics), exp.class_names),
                                   **{k: float(v) for k, v in health.items() if k not in ('finite', 'loss')}})
      train_metrics = None
    if due.evaluate:
      last_eval = validate()
    if (due.evaluate or due.checkpoint or due.stop) and saved_step != step:
      manager.save(step, state, train_iter.get_state(), last_eval if due.evaluate else None,
                   _progress(wall(), train_metrics))
      saved_step = step
    if due.stop:
      manager.close()  # the save is committed before the message says so
      raise Interrupted(
          f'stopped by {signal.Signals(due.stop).name} at step {step}/{exp.total_steps}; checkpoint '
          f'saved in {manager.directory}. Rerun the same command to resume.', due.stop)
  if not last_eval:  # resumed at the last step: evaluate the final state all the same
    last_eval = validate()
  manager.close()
  writer.write(step, 'summary', {'wall_seconds': wall(), 'steps': step})
  return last_eval


def _check_finite(all_finite, step, manager):
  if not bool(all_finite):
    committed = manager.committed_step()  # not a save still in flight
    where = (f'The last good checkpoint is step {committed} in {manager.directory}; rerun to '
             f'resume from it' if committed is not None else 'No checkpoint was saved yet; rerun '
             'to start again')
    raise NonFiniteError(
        f'Loss, gradients or parameters became non-finite by step {step}; the bad update was not '
        f'applied. {where} after lowering config.optimizer.learning_rate or setting '
        f'config.optimizer.grad_clip_norm.')


def evaluate_checkpoint(config, workdir: str | os.PathLike, checkpoint: str = 'best', split: str = 'test') -> dict:
  """Restores `checkpoint` (best | latest | STEP) from `workdir` and evaluates `split`.
  A config whose target, model or data differ from the workdir's experiment is refused."""
  exp, run = Experiment(config), workdir_lib.Workdir(workdir)
  with checkpoints.Manager(run, config, read_only=True) as manager:
    run.check_same_experiment(config, exp.dataset, True)
    state, _ = manager.restore(exp.initial_state(), checkpoint)
  _, p_eval = pmap_steps(exp.loss_fn, config, exp.target.mirror_label_map)
  result = summarize_eval(evaluate(p_eval, state, exp.split(split), exp.target, config), exp.class_names)
  return {'step': int(state.step), 'split': split, 'checkpoint': checkpoint, 'target': config.target,
          'dataset': exp.dataset, **result}
