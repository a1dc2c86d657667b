"""Process set-up before JAX starts its backends: compilation cache and CPU devices.

* The persistent compilation cache is on by default (~/.cache/unet_flax/jax_cache, or
  $JAX_COMPILATION_CACHE_DIR), so a second run of the same config does not recompile.
* On CPU, XLA runs each convolution on one core (YNNPACK) and most of the step is
  convolutions, so one XLA device per core is the fast layout: the pmapped step then
  keeps every core busy (docs/benchmarks.md). Training does not depend on the device
  count (global-batch losses, synchronised batch norm, per-example random keys), so
  this changes speed, not results. An explicit --xla_force_host_platform_device_count
  in XLA_FLAGS is kept as given; GPU and TPU hosts are unaffected (the flag only
  shapes the CPU backend).
"""

from __future__ import annotations

import os

from unet_flax.errors import ConfigError

CACHE_DIR = os.path.join(os.path.expanduser('~'), '.cache', 'unet_flax', 'jax_cache')
_DEVICE_COUNT_FLAG = '--xla_force_host_platform_device_count'


def cpu_cores() -> int:
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:
    return os.cpu_count() or 1


def cpu_device_count(batch_sizes, processes: int = 1, cores: int | None = None) -> int:
  """The most CPU devices (at most one per core) that divide every per-host batch."""
  cores = cores or cpu_cores()
  per_host = [b // processes for b in batch_sizes if isinstance(b, int) and b > 0]  # bad ones: validate's job
  return max(d for d in range(1, cores + 1) if all(b % d == 0 for b in per_host))


def batch_divisibility_problem(field: str, batch_size: int, devices: int, hosts: int = 1) -> str | None:
  """Why config.`field` = `batch_size` cannot be split evenly over `devices` (all hosts), or None."""
  if isinstance(batch_size, int) and batch_size > 0 and batch_size % devices == 0:
    return None
  suggestion = max(1, round(batch_size / devices)) * devices if isinstance(batch_size, int) else devices
  return (f'config.{field}={batch_size!r} must be a positive multiple of the {devices} devices '
          f'({hosts} host(s) x {devices // hosts}); e.g. --config.{field}={suggestion}')


def check_batch_divisible(field: str, batch_size: int, devices: int, hosts: int = 1) -> None:
  problem = batch_divisibility_problem(field, batch_size, devices, hosts)
  if problem:
    raise ConfigError(problem + '.')


def configure(batch_sizes=(), processes: int = 1) -> None:
  """Call before the first JAX computation (importing jax is fine)."""
  flags = os.environ.get('XLA_FLAGS', '')
  if _DEVICE_COUNT_FLAG not in flags and batch_sizes:
    os.environ['XLA_FLAGS'] = f'{flags} {_DEVICE_COUNT_FLAG}={cpu_device_count(batch_sizes, processes)}'.strip()
  import jax
  if not jax.config.jax_compilation_cache_dir:
    jax.config.update('jax_compilation_cache_dir', os.environ.get('JAX_COMPILATION_CACHE_DIR', CACHE_DIR))
