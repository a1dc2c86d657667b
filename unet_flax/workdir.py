"""A run folder (`--workdir`): what it holds, what it records, and who may write it.

`Workdir` owns the folder: every file in it is named there, and read and written through its
typed methods, so a rename cannot leave a reader looking for the old name.

A workdir belongs to one experiment: `experiment.json` holds the config and dataset of
the run that first trained there, and a rerun (or an eval) whose target, model, data or
training recipe differs is refused with the fields that differ. Fields that may change
on resume (`RESUMABLE_FIELDS`) are allowed and recorded in provenance.json.
`Workdir.lock` keeps a second training out of a workdir in use. Also: config.json,
provenance.json, eval_<split>.json, and where metrics.jsonl and TensorBoard go (metrics_log
writes and reads them).

Only process 0 writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import os
import platform
import subprocess
import sys
from importlib import metadata

import jax

from unet_flax import locks, metrics_log
from unet_flax.errors import UserError

PACKAGES = ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'clu', 'grain', 'tensorflow-datasets', 'tensorboardX',
            'ml-collections', 'numpy', 'pillow')


def _git(*args) -> str | None:
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  try:
    return subprocess.run(['git', '-C', repo, *args], capture_output=True, text=True, check=True,
                          timeout=10).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return None


def package_versions(names) -> dict[str, str | None]:
  """name -> installed version, None for a package that is not installed (an optional one)."""
  versions = {}
  for name in names:
    try:
      versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      versions[name] = None
  return versions


def provenance(builder=None) -> dict:
  status = _git('status', '--porcelain', '--untracked-files=no')
  info = {
      'time': datetime.datetime.now(datetime.timezone.utc).isoformat(),
      'command': ' '.join(sys.argv),
      'git_commit': _git('rev-parse', 'HEAD'),
      'git_dirty': None if status is None else bool(status),
      'python': platform.python_version(),
      'packages': package_versions(PACKAGES),
      'process_count': jax.process_count(),
      'devices': [str(d) for d in jax.devices()],
      'device_kind': jax.devices()[0].device_kind,
  }
  if builder is not None:
    info['dataset'] = {'name': builder.info.name, 'config': builder.builder_config.name,
                       'version': str(builder.info.version), 'data_dir': str(builder.data_dir),
                       'splits': {k: v.num_examples for k, v in builder.info.splits.items()}}
  return info


# May differ between a run and its resume (or an eval of it): they change how long and how
# visibly it trains, or where files are, not what is trained.
RESUMABLE_FIELDS = ('num_epochs', 'num_train_steps', 'log_every_steps', 'eval_every_steps',
                    'checkpoint_every_steps', 'keep_checkpoints', 'eval_batch_size',
                    'dataset.data_dir', 'dataset.manual_dir')


class WorkdirMismatchError(UserError):
  """The workdir holds checkpoints of a different experiment."""


class WorkdirBusyError(UserError):
  """Another training holds the workdir's lock."""


def _flat(tree: dict, prefix: str = '') -> dict:
  out = {}
  for key, value in tree.items():
    if isinstance(value, dict) and value:
      out.update(_flat(value, f'{prefix}{key}.'))
    else:
      out[f'{prefix}{key}'] = list(value) if isinstance(value, tuple) else value
  return out


def config_dict(config) -> dict:
  return json.loads(config.to_json_best_effort(sort_keys=True))


def differences(old: dict, new: dict) -> dict[str, tuple]:
  """field -> (old, new) for every leaf that differs between two nested dicts."""
  a, b = _flat(old), _flat(new)
  return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def read_json(path: str, default=None, *, strict: bool = True):
  """The JSON value a run folder's file holds, or `default` when there is no such file.

  A file that is not valid JSON (a crash mid-write before writes were atomic, a hand edit) raises
  a UserError that says what to do: training and eval must not guess. With strict=False, for a
  reader that only shows what is there (reports), it is a warning and `default` instead, so one
  broken run folder does not stop a table of many."""
  if not os.path.exists(path):
    return default
  try:
    with open(path) as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    if not strict:
      logging.warning('%s is not valid JSON (%s); left out.', path, e)
      return default
    raise UserError(f'{path} is not valid JSON ({e}); restore it from a backup or start a fresh '
                    f'--workdir.') from None


def _entry(name: str, doc: str) -> property:
  """A file or folder of every run folder, by name: one line each below instead of a method each."""
  return property(lambda self: self._file(name), doc=doc)


@dataclasses.dataclass(frozen=True)
class Workdir:
  """A run folder. Only this class spells the names of the files in it: every other module and
  tool asks it for a path or a record, so a rename cannot leave a reader looking for the old name.
  """
  path: str

  def __post_init__(self):
    object.__setattr__(self, 'path', os.fspath(self.path))  # a str, a pathlib.Path or a Workdir

  def __fspath__(self) -> str:
    """A Workdir is path-like: every function that takes a run folder takes one."""
    return self.path

  def __str__(self) -> str:  # messages name the folder as the user typed it
    return self.path

  def _file(self, name: str) -> str:
    return os.path.join(self.path, name)

  config_file = _entry('config.json', 'The config of the latest start, rewritten on every start (resumes included).')
  experiment_file = _entry('experiment.json', 'The config and dataset of the first start: what a resume or an eval '
                                              'must match.')
  provenance_file = _entry('provenance.json', 'One entry per start: command, commit, versions, devices, dataset.')
  metrics_file = _entry('metrics.jsonl', 'One JSON row per logged step and split (metrics_log writes and reads it).')
  tensorboard_dir = _entry('tensorboard', 'TensorBoard event files, beside metrics.jsonl.')
  checkpoints_dir = _entry('checkpoints', 'One folder per saved step (checkpoints.Manager).')
  lock_file = _entry('train.lock', 'Held for the duration of a training (Workdir.lock).')
  history_picture = _entry('training_history.png', 'Loss and score against steps, written at the end of training.')
  predictions_picture = _entry('sample_predictions.png', 'Test examples with truth and prediction, written at the end '
                                                         'of training.')
  predictions_dir = _entry('predictions', 'Where `experiments.predict` writes masks and overlays by default.')

  def eval_file(self, split: str) -> str:
    """The metrics `--mode=eval` wrote for a split."""
    return self._file(f'eval_{split}.json')

  def export_dir(self, fmt: str, dtype: str) -> str:
    """Where an export goes unless told otherwise."""
    return os.path.join(self.path, 'export', f'{fmt}_{dtype}')

  def has_checkpoints(self) -> bool:
    folder = self.checkpoints_dir
    return os.path.isdir(folder) and any(n.isdigit() for n in os.listdir(folder))

  def read_config(self, *, strict: bool = True) -> dict | None:
    return read_json(self.config_file, strict=strict)

  def read_provenance(self, *, strict: bool = True) -> list[dict]:
    return read_json(self.provenance_file, [], strict=strict) or []

  def read_eval(self, split: str, *, strict: bool = True) -> dict | None:
    return read_json(self.eval_file(split), strict=strict)

  def write_eval(self, split: str, result: dict) -> str:
    return _write_text(self.eval_file(split), json.dumps(result, indent=2))

  def write_eval_classes(self, split: str, markdown: str) -> str:
    """Face parsing: the per-class table beside eval_file."""
    return _write_text(self._file(f'eval_{split}_classes.md'), markdown)

  def read_metrics(self) -> list[dict]:
    return metrics_log.read(self.metrics_file)

  def metric_writer(self) -> metrics_log.MetricWriter:
    return metrics_log.MetricWriter(self.metrics_file, self.tensorboard_dir)

  @contextlib.contextmanager
  def lock(self):
    """The lock file holding host, PID and start time, for the duration of a training (a
    `locks.FileLock`: what it relies on and where it does not hold is said there).

    A lock left by a process that no longer runs on this host is stale and taken over; a lock
    from another host cannot be checked, so the message says how to remove it.
    """
    lock = locks.FileLock(self.lock_file)
    if jax.process_index() == 0 and (holder := lock.acquire()) is not None:
      raise WorkdirBusyError(
          f'{os.path.dirname(self.lock_file)} is in use by a training ({locks.describe(holder)}; lock '
          f'{self.lock_file}). Wait for it to finish or stop it; if that process is gone, delete the '
          f'lock file.')
    try:
      yield
    finally:
      lock.release()

  def check_same_experiment(self, config, dataset: dict, has_checkpoints: bool) -> dict:
    """Raises WorkdirMismatchError if the workdir's checkpoints come from another experiment;
    returns the allowed field changes {field: (old, new)}."""
    path = self.experiment_file
    if not has_checkpoints:
      return {}
    if not os.path.exists(path):  # a workdir from before experiment.json: its config.json
      path = self.config_file
      if not os.path.exists(path):
        return {}
      recorded = {'config': read_json(path), 'dataset': dataset}
    else:
      recorded = read_json(path)
    # A field the recorded config lacks was added to the code since: not compared.
    recorded_fields = _flat(recorded['config'])
    changed = {k: v for k, v in differences(recorded['config'], config_dict(config)).items()
               if k in recorded_fields}
    fixed = {k: v for k, v in changed.items() if k not in RESUMABLE_FIELDS}
    fixed.update({f'dataset[{k}]': v for k, v in differences(recorded['dataset'], dataset).items() if k != 'data_dir'})
    if fixed:
      shown = '; '.join(f'{k}: {old!r} -> {new!r}' for k, (old, new) in list(fixed.items())[:8])
      raise WorkdirMismatchError(
          f'{self.path} holds checkpoints of another experiment ({path}); differing fields: {shown}'
          f'{" ..." if len(fixed) > 8 else ""}. Use a fresh --workdir for the new experiment, or '
          f'rerun with the workdir\'s own settings (its config.json).')
    return {k: v for k, v in changed.items() if k in RESUMABLE_FIELDS}

  def record_start(self, config, dataset: dict, changes: dict | None = None, builder=None) -> None:
    """Writes config.json (and experiment.json on the first start) and appends to
    provenance.json: one entry per start, resumes included, with the fields changed since."""
    if jax.process_index() != 0:
      return
    os.makedirs(self.path, exist_ok=True)
    _write_json(self.config_file, config_dict(config))
    if not self.has_checkpoints() or not os.path.exists(self.experiment_file):
      _write_json(self.experiment_file, {'config': config_dict(config), 'dataset': dataset})
    history = read_json(self.provenance_file, [])
    entry = provenance(builder)
    if changes:
      entry['changed_since_first_start'] = {k: {'was': a, 'now': b} for k, (a, b) in changes.items()}
    history.append(entry)
    _write_json(self.provenance_file, history)


def _write_text(path: str, text: str) -> str:
  with open(path, 'w') as f:
    f.write(text)
  return path


def _write_json(path: str, value) -> None:
  """Written to a temporary file and renamed: a crash never leaves half a file."""
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'w') as f:
    json.dump(value, f, indent=2, sort_keys=isinstance(value, dict))
  os.replace(tmp, path)
