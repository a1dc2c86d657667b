"""Orbax checkpoints in <workdir>/checkpoints: train state, input iterator state and progress.

Kept: the latest `config.keep_checkpoints` and the best by validation
`config.best_metric` (Dice, or mean F1 for face parsing; lowest for a loss). `progress`
holds what must survive a resume besides the state: wall time so far and the partial
train-metrics window. Use the manager as a context manager: every exit path waits for
in-flight saves and closes it.

Damaged checkpoints (a failing disk, a half-finished copy, a full quota): a checkpoint whose
files cannot be read is named by its step and the file that failed. `latest` and `best` fall
back to the newest checkpoint that restores, with one warning; an explicit step that is
damaged is an error listing the steps that restore. Damaged checkpoints stay on disk; a
training that falls back moves the newer damaged ones aside to `damaged-<step>-<time>`, so
that it can save those step numbers again.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import re
import sys

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from unet_flax import metrics as metrics_lib
from unet_flax.data import parts as parts_lib
from unet_flax.errors import UserError
from unet_flax.workdir import Workdir

# Orbax warns on every save without metrics when it tracks a best checkpoint; periodic and
# interrupt saves fall between evaluations and have none by design. It also warns that a
# manager opened read-only (evaluation, prediction, export) will not save: it is meant not to.
_EXPECTED_NOTICES = ('did not provide metrics', 'read_only=True, setting save_interval_steps=0',
                     'Given directory is read only')
logging.getLogger('absl').addFilter(lambda record: not any(n in record.getMessage() for n in _EXPECTED_NOTICES))


class _ReportedDamage(logging.Filter):
  """When one read of a damaged checkpoint fails, Orbax gives up on the others, which still run
  in TensorStore: asyncio logs each one's error (while Orbax is still failing), and those that
  end after their event loop closed raise in a callback thread. Orbax raises the first error
  all the same, which `Manager.restore` reports (or raises, if it is not damage): dropped."""

  directories: set[str] = set()  # the checkpoint folders managers have opened
  damage_seen = False

  def filter(self, record):
    message = record.getMessage()
    return 'never retrieved' not in message or not any(d in message for d in self.directories)

  @staticmethod
  def unraisable(hook):
    def quiet(report):
      if not (_ReportedDamage.damage_seen and isinstance(report.exc_value, RuntimeError)
              and str(report.exc_value) == 'Event loop is closed'):
        hook(report)
    return quiet


logging.getLogger('asyncio').addFilter(_ReportedDamage())


def _savable(tree):
  """pmap returns the state replicated over this host's devices only, which Orbax writes only
  in a single process. Across processes every host holds the same state: save host copies
  (Orbax writes numpy leaves from the primary process) and restore into numpy likewise."""
  return tree if jax.process_count() == 1 else jax.device_get(tree)


class CheckpointNotFoundError(UserError):
  """No checkpoint of the requested kind in the workdir."""


class CheckpointDamagedError(UserError):
  """The requested checkpoint, or every checkpoint, cannot be read."""


DAMAGED_PREFIX = 'damaged-'  # damaged-<step>-<time>: a damaged step a training moved aside


def _unparsable(path: str) -> str | None:
  """Why a JSON file cannot be read, or None."""
  try:
    with open(path, encoding='utf-8') as f:
      json.load(f)
  except UnicodeDecodeError:
    return 'not text'
  except ValueError as e:
    return f'not valid JSON: {e}'
  except OSError as e:
    return e.strerror
  return None


def _json_files(step_dir: str):
  """The files of a step that Orbax writes as JSON: all but the array chunks (in `d/` folders)
  and OCDBT manifests."""
  for folder, dirs, files in os.walk(step_dir):
    dirs[:] = sorted(d for d in dirs if d != 'd')
    for name in sorted(files):
      if not name.endswith('.ocdbt') and name != 'commit_success.txt':
        yield os.path.join(folder, name)


def damage(step_dir: str, error: BaseException) -> str | None:
  """What in `step_dir` could not be read, as 'relative/path (reason)'; None when `error` does
  not come from the checkpoint's files (a bug, which keeps its traceback)."""
  chain, e = [], error
  while e is not None and len(chain) < 8:
    chain.append(e)
    e = e.__cause__ or e.__context__
  # (path in step_dir, the error naming it): TensorStore names the file it could not decode.
  named, in_step = [], re.escape(step_dir) + r'/[^"\'\s,\]]*'
  for depth, e in enumerate(chain):
    for path in [getattr(e, 'filename', None), *re.findall(in_step, str(e))]:
      if path and os.path.abspath(str(path)).startswith(step_dir + os.sep):
        named.append((os.path.isfile(path), len(str(path)), depth, os.path.abspath(str(path)), e))
  if named:  # the most precise path, and the deepest error that names it
    *_, path, e = max(named, key=lambda n: n[:3])
    reason = ' '.join(str(e).split(' [tensorstore_spec')[0].replace(step_dir + '/', '').split())
    return f'{os.path.relpath(path, step_dir)} ({reason[:240]})'
  for path in _json_files(step_dir):  # JSON decoding errors name no file
    reason = _unparsable(path)
    if reason:
      return f'{os.path.relpath(path, step_dir)} ({reason[:240]})'
  return None


def _unreadable_metrics(directory: str) -> dict[int, str]:
  """step -> what is wrong, for steps whose metrics file cannot be read."""
  names = os.listdir(directory) if os.path.isdir(directory) else []
  paths = {int(n): os.path.join(directory, n, 'metrics', 'metrics') for n in names if n.isdigit()}
  reasons = {step: _unparsable(path) for step, path in paths.items() if os.path.exists(path)}
  return {step: f'metrics/metrics ({why})' for step, why in reasons.items() if why}


class _Without:
  """Orbax's step naming, leaving some steps out. Orbax reads every step's metrics when it opens
  the folder: one unreadable metrics file would stop it opening any checkpoint."""

  def __init__(self, steps):
    self._format, self._steps = ocp.step.standard_name_format(), steps

  # Only what Orbax's manager calls, each named: a step format method it starts to use fails
  # loudly here rather than listing the left-out steps unfiltered.
  def build_name(self, step: int) -> str:
    return self._format.build_name(step)

  def find_step(self, base_path, step: int):
    return self._format.find_step(base_path, step)

  def find_all(self, base_path):
    return (m for m in self._format.find_all(base_path) if m.step not in self._steps)


class Manager(contextlib.AbstractContextManager):

  def __init__(self, workdir: str | os.PathLike, config, read_only: bool = False):
    self.directory = os.path.abspath(Workdir(workdir).checkpoints_dir)
    self.read_only = read_only
    # step -> what is wrong: unreadable metrics now, and more as restores find them.
    self.damaged = _unreadable_metrics(self.directory)
    _ReportedDamage.directories.add(self.directory + os.sep)
    self.best_metric = config.best_metric or metrics_lib.default_best_metric(
        parts_lib.num_classes(config.target))
    lower_is_better = self.best_metric in metrics_lib.LOWER_IS_BETTER
    metric = lambda m: m[self.best_metric]
    options = ocp.CheckpointManagerOptions(
        best_fn=metric, best_mode='min' if lower_is_better else 'max', read_only=read_only,
        create=not read_only, step_name_format=_Without(self.damaged),
        preservation_policy=policies.AnyPreservationPolicy([
            policies.LatestN(n=config.keep_checkpoints),
            policies.BestN(get_metric_fn=metric, reverse=lower_is_better, n=1,
                           keep_checkpoints_without_metrics=False)]))
    if read_only and not os.path.isdir(self.directory):
      raise CheckpointNotFoundError(
          f'No checkpoints in {self.directory}: train first (python -m experiments.main '
          f'--config=... --workdir={workdir}) or point --workdir at a trained run.')
    self._manager = ocp.CheckpointManager(self.directory, options=options)

  def __exit__(self, *exc):
    self.close()

  def has_checkpoints(self) -> bool:
    """Whether there is anything to resume from, or to report as damaged."""
    return bool(self._manager.all_steps()) or bool(self.damaged)

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
    """The step `which` (best | latest | STEP) names, before any fall-back from damage."""
    steps = sorted(set(self._manager.all_steps()) | set(self.damaged))
    if not steps:
      raise CheckpointNotFoundError(f'No checkpoints in {self.directory}: train first.')
    if which == 'latest':
      return steps[-1]
    if which == 'best':
      best = self._manager.best_step()
      return best if best is not None else steps[-1]
    if which.isdigit() and int(which) in steps:
      return int(which)
    raise CheckpointNotFoundError(
        f'--checkpoint={which!r}: use best, latest or one of the saved steps {steps} '
        f'in {self.directory}.')

  def restore(self, template_state, which: str = 'latest', with_progress: bool = False):
    """(state, iterator state[, progress]) at `which`; `template_state` gives structure, dtypes
    and devices. Checkpoints from before `progress` existed give an empty one. `latest` and
    `best` fall back to the newest checkpoint that restores when theirs is damaged."""
    first = self.resolve(which)
    order = [first] if which.isdigit() else [first] + sorted(
        (set(self._manager.all_steps()) | set(self.damaged)) - {first}, reverse=True)
    failed = {}
    for step in order:
      restored = self._try_restore(step, template_state, failed)
      if restored is not None:
        break
    else:
      if which.isdigit():
        good = [s for s in self._manager.all_steps() if s != first and s not in self.damaged
                and self._try_restore(s, template_state, {}) is not None]
        raise CheckpointDamagedError(
            f'checkpoint step {first} in {self.directory} cannot be read: {failed[first]}. Steps '
            f'that restore: {good or "none"}; pass one of them as --checkpoint (or best, latest).')
      shown = '; '.join(f'step {s}: {why}' for s, why in sorted(failed.items()))
      raise CheckpointDamagedError(
          f'no checkpoint in {self.directory} can be read ({shown}). They are left as they are: '
          f'restore them from a copy, or train again in a fresh --workdir.')
    if failed:
      self._report(failed, step)
    return restored if with_progress else restored[:2]

  def _try_restore(self, step: int, template_state, failed: dict):
    """(state, iterator state, progress), or None with the damage recorded in `failed`."""
    if step in self.damaged:
      failed[step] = self.damaged[step]
      return None
    items = dict(state=ocp.args.StandardRestore(_savable(template_state)),
                 data_iter=ocp.args.JsonRestore())
    has_progress = os.path.isdir(os.path.join(self.directory, str(step), 'progress'))
    if has_progress:
      items['progress'] = ocp.args.JsonRestore()
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(**items))
    except Exception as e:  # noqa: BLE001 -- what is not damage is raised again just below
      why = damage(os.path.join(self.directory, str(step)), e)
      if why is None:
        raise
      if not _ReportedDamage.damage_seen:
        sys.unraisablehook = _ReportedDamage.unraisable(sys.unraisablehook)
        _ReportedDamage.damage_seen = True
      failed[step] = self.damaged[step] = why
      return None
    progress = dict(restored['progress']) if has_progress else {}
    return restored['state'], restored['data_iter'], progress

  def _report(self, failed: dict, step: int) -> None:
    """One warning naming the damaged steps. A training moves the ones newer than `step` aside:
    it saves those step numbers again, and Orbax saves no step at or below its latest."""
    moved = {}
    if not self.read_only:
      stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')
      for s in sorted(s for s in failed if s > step):
        moved[s] = os.path.join(self.directory, f'{DAMAGED_PREFIX}{s}-{stamp}')
        if jax.process_index() == 0:
          os.rename(os.path.join(self.directory, str(s)), moved[s])
      if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices('damaged checkpoints moved aside')
      self._manager.reload()
    where = lambda s: f'moved to {moved[s]}' if s in moved else 'left where it is'
    shown = '; '.join(f'step {s}: {why}, {where(s)}' for s, why in sorted(failed.items()))
    logging.warning('Damaged checkpoint(s) in %s, kept for inspection (%s). Using step %d, the '
                    'newest checkpoint that restores.', self.directory, shown, step)

  def close(self):
    if self._manager is not None:
      self._manager.wait_until_finished()
      self._manager.close()
      self._manager = None
