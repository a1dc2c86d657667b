"""Timing the compiled train step: device-resident batches, XLA's FLOP count, the device's
matmul peak and peak memory. Used by `experiments.benchmark` and `experiments.profile_step`;
imports only JAX and the model/step modules (no TensorFlow, Grain or TFDS)."""

from __future__ import annotations

import json
import os
import resource
import time

from unet_flax.runtime import CACHE_DIR


def time_calls(fn, repeats: int, warmup: int = 0) -> list[float]:
  """Seconds per call of fn() over `repeats` calls after `warmup` untimed ones; fn must wait
  for its own result."""
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return times


def matmul_peak_tflops(dtype_name: str) -> float:
  """TFLOP/s of a large square matmul on one device in `dtype_name`; cached per device kind."""
  import jax
  import jax.numpy as jnp
  device = jax.local_devices()[0]
  key = f'{device.platform}-{device.device_kind}-{jax.local_device_count()}-{dtype_name}'.replace(' ', '_')
  path = os.path.join(CACHE_DIR, 'matmul_peak.json')
  cache = json.load(open(path)) if os.path.exists(path) else {}
  if key in cache:
    return cache[key]
  n = 8192 if device.platform == 'gpu' else 2048
  a, b = (jax.random.normal(jax.random.key(i), (n, n), jnp.float32).astype(dtype_name) for i in (1, 2))
  f = jax.jit(lambda a, b: a @ b)
  times = time_calls(lambda: f(a, b).block_until_ready(), 20, warmup=1)
  cache[key] = 2 * n ** 3 / min(times) / 1e12
  os.makedirs(CACHE_DIR, exist_ok=True)
  with open(path, 'w') as f_out:
    json.dump(cache, f_out, indent=2)
  return cache[key]


def flops_per_call(compiled) -> float:
  """XLA's FLOP count for one call of a compiled (per-device) program."""
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0]
  return float(cost.get('flops', 0.0)) if cost else 0.0


def peak_memory_bytes() -> tuple[int, str]:
  import jax
  stats = jax.local_devices()[0].memory_stats() or {}
  if 'peak_bytes_in_use' in stats:
    return int(stats['peak_bytes_in_use']), 'device'
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, 'host RSS'


class OurStep:
  """The compiled, pmapped train step on random device-resident batches."""

  def __init__(self, config, input_size: int):
    import jax
    import numpy as np

    from unet_flax import losses, runtime, steps
    from unet_flax.data import parts as parts_lib

    target = parts_lib.training_target(config, parts_lib.dataset_parts(config.dataset.config))
    model = steps.make_unet(config, target.num_classes)
    self.state = steps.create_train_state(jax.random.key(config.seed), model, config.model.image_size,
                                          steps.make_optimizer(config.optimizer, 1000))
    train, _ = steps.pmap_steps(losses.make_loss(config.loss), config, target.mirror_label_map)
    self.devices = jax.local_device_count()
    runtime.check_batch_divisible('batch_size', config.batch_size, self.devices)
    self.batch_size = config.batch_size
    self.input_size = input_size
    rng = np.random.default_rng(0)
    shape = (self.devices, config.batch_size // self.devices, input_size, input_size)
    to_devices = jax.pmap(lambda x: x)
    # Two batches alternate, so no step reads what the previous one left in cache.
    # The same structure as the input pipeline's batches, so --end_to_end feeds the same program.
    self.batches = [{'image': to_devices(rng.random(shape + (3,), np.float32)),
                     'label': to_devices((rng.random(shape) < 0.2).astype(np.uint8)),
                     'valid': to_devices(np.ones(shape[:2], bool))} for _ in range(2)]
    t0 = time.perf_counter()
    self.compiled = train.lower(self.state, self.batches[0]).compile()
    self.compile_seconds = time.perf_counter() - t0
    self.flops_per_step = flops_per_call(self.compiled) * self.devices
    self._i = 0

  def run(self, batch=None):
    if batch is None:
      batch, self._i = self.batches[self._i % 2], self._i + 1
    self.state, _, health = self.compiled(self.state, batch)
    return health

  def time_steps(self, n: int) -> list[float]:
    return time_calls(lambda: self.run()['loss'].block_until_ready(), n)


def compile_step(config, input_size: int = 0) -> OurStep:
  """The set-up the benchmark and the profiler share: this process's devices and compilation cache
  for config's batch (`runtime.configure`, so call it before any other JAX computation), then
  config's train step compiled for batches of side `input_size` (0: the model's input size)."""
  from unet_flax import runtime
  runtime.configure((config.batch_size,))
  return OurStep(config, input_size or config.model.image_size)
