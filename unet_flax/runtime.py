"""Process set-up before JAX starts its backends: compilation cache, CPU devices, and the
distributed runtime's timeouts when there are several hosts.

* The persistent compilation cache is on by default (~/.cache/unet_flax/jax_cache, or
  $JAX_COMPILATION_CACHE_DIR), so a second run of the same config does not recompile.
* On CPU, XLA runs each convolution on one core (YNNPACK) and most of the step is
  convolutions, so one XLA device per core is the fast layout: the pmapped step then
  keeps every core busy (docs/benchmarks.md). Training does not depend on the device
  count (global-batch losses, synchronised batch norm, per-example random keys), so
  this changes speed, not results. An explicit --xla_force_host_platform_device_count
  in XLA_FLAGS is kept as given; GPU and TPU hosts are unaffected (the flag only
  shapes the CPU backend).
* Several hosts wait for each other at start-up, at dataset preparation, at each
  collective and at exit; `distributed_timeout` says how long
  (docs/multihost.md, "Timeouts"), and `connect_collectives` makes the first collective
  wait that long too.
"""

from __future__ import annotations

import itertools
import os

from unet_flax.errors import ConfigError

# What the project keeps between runs (compiled programs, the measured matmul peak, downloaded-by-hand
# models) lives under one folder.
CACHE_DIR = os.path.join(os.path.expanduser('~'), '.cache', 'unet_flax')
JAX_CACHE_DIR = os.path.join(CACHE_DIR, 'jax_cache')
_DEVICE_COUNT_FLAG = '--xla_force_host_platform_device_count'
# How long one host waits for the others, wherever they meet. Hosts that start, prepare the
# dataset or finish compiling minutes apart (a loaded machine, a real cluster) must still
# meet; a host that died is found sooner, by the heartbeat.
TIMEOUT_ENV = 'UNET_FLAX_DISTRIBUTED_TIMEOUT_SECONDS'
DEFAULT_TIMEOUT_SECONDS = 15 * 60
# JAX's default: a host whose heartbeats stop for this long counts as dead and the others
# stop. It detects crashes, not slow hosts (heartbeats run on their own thread), so it stays
# short.
HEARTBEAT_TIMEOUT_SECONDS = 100
# How long a gloo collective waits for its peers once the hosts are connected (XLA's default
# is 30 min); set to the same wait as everything else.
_COLLECTIVE_TIMEOUT_FLAG = '--xla_cpu_collective_timeout_seconds'
_barriers = itertools.count()


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


def distributed_timeout() -> int:
  """Seconds, from $UNET_FLAX_DISTRIBUTED_TIMEOUT_SECONDS or DEFAULT_TIMEOUT_SECONDS."""
  value = os.environ.get(TIMEOUT_ENV, '').strip()
  if not value:
    return DEFAULT_TIMEOUT_SECONDS
  if not value.isdigit() or int(value) == 0:
    raise ConfigError(f'{TIMEOUT_ENV}={value!r}: give a whole number of seconds above 0.')
  return int(value)


def configure(batch_sizes=(), processes: int = 1) -> None:
  """Call before the first JAX computation (importing jax is fine)."""
  flags = os.environ.get('XLA_FLAGS', '')
  if _DEVICE_COUNT_FLAG not in flags and batch_sizes:
    flags = f'{flags} {_DEVICE_COUNT_FLAG}={cpu_device_count(batch_sizes, processes)}'
  if processes > 1 and _COLLECTIVE_TIMEOUT_FLAG not in flags:
    flags = f'{flags} {_COLLECTIVE_TIMEOUT_FLAG}={distributed_timeout()}'
  if flags.strip():
    os.environ['XLA_FLAGS'] = flags.strip()
  import jax
  if not jax.config.jax_compilation_cache_dir:
    jax.config.update('jax_compilation_cache_dir', os.environ.get('JAX_COMPILATION_CACHE_DIR', JAX_CACHE_DIR))


def start_distributed(coordinator_address=None, num_processes=None, process_id=None) -> None:
  """`jax.distributed.initialize` with its timeouts set, then `connect_collectives`. Without
  arguments JAX reads the coordinator and ranks from SLURM, Open MPI or its environment."""
  import jax
  timeout = distributed_timeout()
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')  # CPU hosts; GPUs use NCCL
  # initialization_timeout: how long the first hosts wait for the last one to start.
  # shutdown_timeout_seconds: how long the coordinator waits for every host at exit (process 0
  # still writes the pictures when the others are done).
  jax.distributed.initialize(coordinator_address, num_processes, process_id,
                             initialization_timeout=timeout,
                             heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_SECONDS,
                             shutdown_timeout_seconds=timeout)
  connect_collectives()


def barrier(name: str, timeout_seconds: int | None = None) -> None:
  """Waits until every process reaches `name` (at most the distributed timeout). A barrier of
  the distributed runtime's key-value service, not a collective, so it has no 30 s limit."""
  import jax
  if jax.process_count() == 1:
    return
  # JAX has no public handle on its distributed client (Orbax's barriers use this one too).
  from jax._src import distributed
  timeout_seconds = timeout_seconds or distributed_timeout()
  # Barrier ids are single-use: a counter keeps a repeated name (the same call in a loop) apart;
  # every process makes the same calls in the same order, so the ids agree.
  distributed.global_state.client.wait_at_barrier(f'unet_flax/{name}/{next(_barriers)}',
                                                  timeout_seconds * 1000)


def connect_collectives() -> None:
  """Lets the first collective of the run wait as long as any other.

  On CPU hosts gloo connects the processes of a set of devices at the first collective over
  that set, and gives the connection 30 s, which JAX 0.10 does not let us change
  (`GetKeyValue() timed out`): a host that finishes compiling its first step 30 s after
  another would stop the run. Once connected, a collective waits the XLA flag's timeout (set
  in `configure`). So the hosts meet at a `barrier` first, then run one tiny collective over
  each device set the run uses: `pmap` over all devices (the train and eval steps) and
  `multihost_utils`' all-gather (its barriers, Orbax's, and the stop-signal agreement).
  """
  import jax
  if jax.process_count() == 1 or jax.default_backend() != 'cpu':
    return
  import numpy as np
  from jax.experimental import multihost_utils
  barrier('connect collectives')
  ones = np.ones(jax.local_device_count(), np.int32)
  total = jax.pmap(lambda x: jax.lax.psum(x, 'hosts'), axis_name='hosts', out_axes=None)(ones)
  assert int(total) == jax.device_count(), total
  multihost_utils.sync_global_devices('unet_flax: collectives connected')
