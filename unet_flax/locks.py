"""Lock files for jobs that share a filesystem: `train.lock` (one training per workdir) and the
dataset's `prepare.lock` (one build per data_dir at a time).

What a lock relies on: creating a name that exists fails, atomically, on the filesystems jobs
share (local disks, NFS v3 and later, Lustre, GPFS, BeeGFS, CephFS). The holder's record
(host, PID, start time) is written to a private file first and hard-linked to the lock's name,
so a lock is never seen half-written. `fcntl`/`flock` locks are not used: on several cluster
filesystems (Lustre mounted with `localflock`, BeeGFS by default, NFS mounted with `nolock`)
they hold on one host only, without any error.

A holder that died leaves its lock file behind:
* died on this host (same host name and PID namespace, its PID gone): the lock is stale at
  once and is taken over;
* died on another host: its PID cannot be checked. A lock taken with `heartbeat=True` is
  touched by its holder every `HEARTBEAT_SECONDS`; a waiter that has seen it unchanged for
  `STALE_AFTER_SECONDS` of its own clock takes it over (no clocks of two hosts are compared).
  A lock without heartbeat (train.lock) from another host is reported with how to remove it.

Where a lock does not hold: a holder frozen for longer than `STALE_AFTER_SECONDS` (a suspended
job, a host cut off from the filesystem) is taken for dead; two waiters taking over one stale
lock within microseconds of each other can both go ahead; where hard links are missing (some
FUSE filesystems) a lock is created, then written, and can be taken for damaged in between.
What a lock guards must survive a second holder: the dataset build does (see
`unet_flax.data.dataset.prepare`).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import logging
import os
import socket
import threading
import time
import uuid

HEARTBEAT_SECONDS = 10.0
STALE_AFTER_SECONDS = 120.0  # 12 missed heartbeats; NFS attribute caches lag by up to 60 s
POLL_SECONDS = 1.0


def _pid_namespace() -> str | None:
  """Containers on one host can share its name but not its PIDs."""
  try:
    return os.readlink('/proc/self/ns/pid')
  except OSError:
    return None


def describe(holder: dict | None) -> str:
  if not holder:
    return 'an unknown process'
  return f'PID {holder.get("pid")} on {holder.get("host")}, since {holder.get("started")}'


class FileLock(contextlib.AbstractContextManager):
  """A lock file at `path`. `acquire()` takes it or returns the live holder's record;
  `acquire(wait=True)` waits until it is free. Use `release()` (or the lock as a context
  manager after `acquire`) to give it back."""

  def __init__(self, path: str, heartbeat: bool = False):
    self.path = path
    self.heartbeat = heartbeat
    self.record = None
    self._stop = threading.Event()
    self._beat = None

  def acquire(self, wait: bool = False, on_wait=None) -> dict | None:
    """None once the lock is held; without `wait`, the holder's record when someone else holds
    it. `on_wait(holder)` is called once for each holder waited for."""
    os.makedirs(os.path.dirname(self.path) or '.', exist_ok=True)
    record = {'host': socket.gethostname(), 'pid': os.getpid(), 'pid_namespace': _pid_namespace(),
              'started': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
              'token': uuid.uuid4().hex}
    told, seen, seen_since = set(), None, 0.0
    while True:
      if self._create(record):
        self.record = record
        if self.heartbeat:
          self._beat = threading.Thread(target=self._heartbeat, daemon=True, name='lock heartbeat')
          self._beat.start()
        return None
      try:
        stat = os.stat(self.path)
      except FileNotFoundError:
        continue  # released just now: try again at once
      holder = _read(self.path)
      if holder is None and not os.path.exists(self.path):
        continue
      if holder is None or _died_here(holder):
        logging.warning('Taking over the lock %s: its holder (%s) is no longer running.', self.path,
                        describe(holder))
        self._take_over(holder)
        continue
      if not wait:
        return holder
      if holder.get('token') not in told:
        told.add(holder.get('token'))
        if on_wait:
          on_wait(holder)
      now = time.monotonic()
      if seen != (stat.st_ino, stat.st_mtime_ns, holder.get('token')):
        seen, seen_since = (stat.st_ino, stat.st_mtime_ns, holder.get('token')), now
      elif now - seen_since > STALE_AFTER_SECONDS:
        logging.warning('Taking over the lock %s: its holder (%s) has not renewed it for %.0f s.',
                        self.path, describe(holder), now - seen_since)
        self._take_over(holder)
        continue
      time.sleep(POLL_SECONDS)

  def _create(self, record: dict) -> bool:
    private = f'{self.path}.{record["token"]}'
    with open(private, 'w') as f:
      json.dump(record, f)
    try:
      os.link(private, self.path)
      return True
    except FileExistsError:
      return False
    except OSError as e:  # no hard links here (some FUSE and FAT filesystems): exclusive create
      if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS):
        raise
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        return False
      with os.fdopen(fd, 'w') as f:
        json.dump(record, f)
      return True
    finally:
      os.remove(private)

  def _take_over(self, stale: dict | None) -> None:
    """Removes the stale lock file, unless another process replaced it meanwhile: it is moved
    to a private name first, and put back if it is not the one judged stale."""
    aside = f'{self.path}.stale.{uuid.uuid4().hex}'
    try:
      os.rename(self.path, aside)
    except FileNotFoundError:
      return
    if stale is not None and _read(aside) != stale:
      with contextlib.suppress(FileExistsError):
        os.link(aside, self.path)
    os.remove(aside)

  def _heartbeat(self) -> None:
    while not self._stop.wait(HEARTBEAT_SECONDS):
      try:
        os.utime(self.path)
      except FileNotFoundError:
        logging.warning('The lock %s was taken over while this process held it.', self.path)
        return

  def release(self) -> None:
    if self.record is None:
      return
    self._stop.set()
    if self._beat is not None:
      self._beat.join()
    if _read(self.path) == self.record:  # not a lock that another process took over
      with contextlib.suppress(FileNotFoundError):
        os.remove(self.path)
    self.record = None

  def __exit__(self, *exc):
    self.release()


def _read(path: str) -> dict | None:
  try:
    with open(path) as f:
      record = json.load(f)
  except (OSError, ValueError):
    return None  # gone, unreadable or damaged: not a lock anyone can be holding
  return record if isinstance(record, dict) else None


def _died_here(holder: dict) -> bool:
  if holder.get('host') != socket.gethostname():
    return False
  namespace = holder.get('pid_namespace')
  if namespace is not None and namespace != _pid_namespace():
    return False
  try:
    os.kill(int(holder['pid']), 0)
  except ProcessLookupError:
    return True
  except (PermissionError, KeyError, ValueError, TypeError):
    return False
  return False
