"""Orbax checkpoints in <workdir>/checkpoints: train state, input iterator state and progress.

Kept: the latest `config.keep_checkpoints` and the best by validation
`config.best_metric` (Dice, or mean F1 for face parsing; lowest for a loss). `progress`
holds what must survive a resume besides the state: wall time so far and the partial
train-metrics window. Use the manager as a context manager: every exit path waits for
in-flight saves and closes it.
"""

from __future__ import annotations

import logging
import os

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from unet_flax import metrics as metrics_lib
from unet_flax.data import parts as parts_lib
from unet_flax.errors import UserError


class _SavesBetweenEvaluations(logging.Filter):
  """Orbax warns on every save without metrics when it tracks a best checkpoint; periodic and
  interrupt saves fall between evaluations and have none by design."""

  def filter(self, record):
    return 'did not provide metrics' not in record.getMessage()


logging.getLogger('absl').addFilter(_SavesBetweenEvaluations())


def _savable(tree):
  """pmap returns the state replicated over this host's devices only, which Orbax writes only
  in a single process. Across processes every host holds the same state: save host copies
  (Orbax writes numpy leaves from the primary process) and restore into numpy likewise."""
  return tree if jax.process_count() == 1 else jax.device_get(tree)


class CheckpointNotFoundError(UserError):
  """No checkpoint of the requested kind in the workdir."""


class Manager:

  def __init__(self, workdir: str, config, read_only: bool = False):
    self.directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
    self.best_metric = config.best_metric or metrics_lib.default_best_metric(
        parts_lib.num_classes(config.target))
    lower_is_better = self.best_metric in metrics_lib.LOWER_IS_BETTER
    metric = lambda m: m[self.best_metric]
    options = ocp.CheckpointManagerOptions(
        best_fn=metric, best_mode='min' if lower_is_better else 'max', read_only=read_only,
        create=not read_only,
        preservation_policy=policies.AnyPreservationPolicy([
            policies.LatestN(n=config.keep_checkpoints),
            policies.BestN(get_metric_fn=metric, reverse=lower_is_better, n=1,
                           keep_checkpoints_without_metrics=False)]))
    if read_only and not os.path.isdir(self.directory):
      raise CheckpointNotFoundError(
          f'No checkpoints in {self.directory}: train first (python -m experiments.main '
          f'--config=... --workdir={workdir}) or point --workdir at a trained run.')
    self._manager = ocp.CheckpointManager(self.directory, options=options)

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def latest_step(self):
    return self._manager.latest_step()

  def committed_step(self):
    """The latest step whose save has finished (waits for saves in flight)."""
    self._manager.wait_until_finished()
    self._manager.reload()
    return self._manager.latest_step()

  def save(self, step: int, state, iter_state: dict, metrics: dict | None = None,
           progress: dict | None = None) -> None:
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(_savable(state)), data_iter=ocp.args.JsonSave(iter_state),
        progress=ocp.args.JsonSave(progress or {})), metrics=metrics)

  def resolve(self, which: str) -> int:
    steps = self._manager.all_steps()
    if not steps:
      raise CheckpointNotFoundError(f'No checkpoints in {self.directory}: train first.')
    if which == 'latest':
      return self._manager.latest_step()
    if which == 'best':
      best = self._manager.best_step()
      return best if best is not None else self._manager.latest_step()
    if which.isdigit() and int(which) in steps:
      return int(which)
    raise CheckpointNotFoundError(
        f'--checkpoint={which!r}: use best, latest or one of the saved steps {sorted(steps)} '
        f'in {self.directory}.')

  def restore(self, template_state, which: str = 'latest', with_progress: bool = False):
    """(state, iterator state[, progress]) at `which`; `template_state` gives structure, dtypes
    and devices. Checkpoints from before `progress` existed give an empty one."""
    step = self.resolve(which)
    items = dict(state=ocp.args.StandardRestore(_savable(template_state)),
                 data_iter=ocp.args.JsonRestore())
    has_progress = os.path.isdir(os.path.join(self.directory, str(step), 'progress'))
    if has_progress:
      items['progress'] = ocp.args.JsonRestore()
    restored = self._manager.restore(step, args=ocp.args.Composite(**items))
    if with_progress:
      return restored['state'], restored['data_iter'], dict(restored['progress']) if has_progress else {}
    return restored['state'], restored['data_iter']

  def close(self):
    if self._manager is not None:
      self._manager.wait_until_finished()
      self._manager.close()
      self._manager = None
