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
  per_host = [b // processes for b in batch_sizes]
  return max(d for d in range(1, cores + 1) if all(b % d == 0 for b in per_host))


def configure(batch_sizes=(), processes: int = 1) -> None:
  """Call before the first JAX computation (importing jax is fine)."""
  flags = os.environ.get('XLA_FLAGS', '')
  if _DEVICE_COUNT_FLAG not in flags and batch_sizes:
    os.environ['XLA_FLAGS'] = f'{flags} {_DEVICE_COUNT_FLAG}={cpu_device_count(batch_sizes, processes)}'.strip()
  import jax
  if not jax.config.jax_compilation_cache_dir:
    jax.config.update('jax_compilation_cache_dir', os.environ.get('JAX_COMPILATION_CACHE_DIR', CACHE_DIR))
