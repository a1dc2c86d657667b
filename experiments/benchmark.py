"""Train-step benchmark: our pmapped step as training runs it, beside the PyTorch peer.

    python -m experiments.benchmark --config=configs/bench_cpu.py
    python -m experiments.benchmark --config=configs/base.py --config.model.dtype=bfloat16
    python -m experiments.benchmark --config=configs/quick.py --end_to_end   # with the Grain input

It compiles `steps.pmap_steps`' train step for the config (on-device augmentation
included when config.augment.enabled), puts a few random batches on the devices,
warms up, then times steps one by one (each waits for its result) and reports the
median: images/s, ms per step, FLOPs per step from XLA's cost analysis, achieved
TFLOP/s and its fraction of the device's peak (a large matmul in the compute dtype,
measured once per device kind and cached, or --peak_tflops), peak memory, device and
versions. When torch is installed (`requirements-bench.txt`) the peer
(`experiments/peers/torch_unet.py`) is timed in alternating rounds with ours, its
fastest variant is kept, and the ratio ours/peer is the median over rounds.

--end_to_end feeds the step from the real Grain pipeline (the dataset is prepared if
needed) and reports how much of each step waits for data.

The last line printed is one JSON object. The model, steps and this tool import neither
TensorFlow, Grain nor TFDS unless --end_to_end is given.
"""

import importlib.util
import os
import statistics
import time

from absl import flags
from ml_collections import config_flags

from experiments import cli
from unet_flax.errors import UserError

config_flags.DEFINE_config_file('config', None, 'Path to a config file in configs/.', lock_config=True)
flags.DEFINE_integer('steps', 20, 'Timed steps per round.')
flags.DEFINE_integer('warmup', 3, 'Untimed steps after compilation.')
flags.DEFINE_integer('rounds', 3, 'Rounds; ours and the peer alternate within each round.')
flags.DEFINE_enum('peer', 'auto', ['auto', 'on', 'off'], 'Time the PyTorch peer (auto: when torch imports).')
flags.DEFINE_float('peak_tflops', 0.0, 'The device peak in TFLOP/s for MFU; 0 = measure (cached).')
flags.DEFINE_integer('input_size', 0, 'Side of the batches fed to the step; 0 = the model input size '
                     '(as the peer gets). The dataset stores 256 (or 512): the step resizes.')
flags.DEFINE_bool('end_to_end', False, 'Feed the step from the real Grain input pipeline.')
flags.DEFINE_string('output', None, 'Also write the JSON result to this file.')
flags.mark_flags_as_required(['config'])
FLAGS = flags.FLAGS

def end_to_end(config, ours, n: int) -> dict:
  """Steps fed by the real Grain pipeline: (median step ms, fraction of time waiting for data)."""
  from unet_flax.data import dataset as dataset_lib
  from unet_flax.data import parts as parts_lib
  from unet_flax.data import pipeline
  split = pipeline.open_split(dataset_lib.prepare(config.dataset), 'train')
  target = parts_lib.training_target(config, split.part_names)
  batches = pipeline.train_iterator(split, target, global_batch_size=config.batch_size, seed=config.seed)
  for _ in range(3):
    ours.run(next(batches))['loss'].block_until_ready()
  waits, totals = [], []
  for _ in range(n):
    t0 = time.perf_counter()
    batch = next(batches)
    t1 = time.perf_counter()
    ours.run(batch)['loss'].block_until_ready()
    waits.append(t1 - t0)
    totals.append(time.perf_counter() - t0)
  return {'end_to_end_images_per_s': ours.batch_size / statistics.median(totals),
          'end_to_end_step_ms': 1e3 * statistics.median(totals),
          'data_wait_fraction': sum(waits) / sum(totals)}


def peer_wanted(mode: str) -> bool:
  """Whether the peer is timed; asked before compiling, so --peer=on without torch fails at once."""
  available = mode != 'off' and importlib.util.find_spec('torch') is not None
  if mode == 'on' and not available:
    raise UserError('--peer=on needs torch: pip install -r requirements-bench.txt')
  return available


def make_peer(config, params: int):
  """The peer's variants, on the GPU when torch sees one; it must have our `params` parameters."""
  import torch

  from experiments.peers import torch_unet
  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  # Trainers first: one that cannot mirror the config says what to do (--peer=off) before the count differs.
  peers = [(torch_unet.describe(v), torch_unet.Trainer(config, device, **v)) for v in torch_unet.variants(device)]
  peer_params = torch_unet.parameter_count(config.model)
  if peer_params != params:
    raise AssertionError(f'the peer has {peer_params:,} parameters, ours {params:,}: not the same network')
  return peers


def main(argv):
  del argv
  want_peer = peer_wanted(FLAGS.peer)
  from unet_flax.speed import compile_step, matmul_peak_tflops, peak_memory_bytes
  config = FLAGS.config
  ours = compile_step(config, FLAGS.input_size)
  import jax

  device = jax.local_devices()[0]
  params = sum(x.size for x in jax.tree.leaves(ours.state.params))
  print(f'{device.device_kind} x{ours.devices}, jax {jax.__version__}, model.dtype={config.model.dtype}, '
        f'{params:,} parameters, batch {ours.batch_size} at {config.model.image_size}px '
        f'(input {ours.input_size}px), compiled in {ours.compile_seconds:.1f} s', flush=True)
  peers = make_peer(config, params) if want_peer else []
  timed = [('ours_ms', ours), *peers]  # in this order in every round
  for _, stepper in timed:
    stepper.time_steps(FLAGS.warmup)

  rounds = []
  for r in range(FLAGS.rounds):
    rounds.append({name: 1e3 * statistics.median(stepper.time_steps(FLAGS.steps)) for name, stepper in timed})
    print(f'round {r + 1}: ' + ', '.join(f'{k} {v:.1f} ms' for k, v in rounds[-1].items()), flush=True)

  step_ms = statistics.median(r['ours_ms'] for r in rounds)
  dtype = config.model.dtype
  peak = FLAGS.peak_tflops or matmul_peak_tflops(dtype)
  tflops = ours.flops_per_step / (step_ms / 1e3) / 1e12
  memory, memory_kind = peak_memory_bytes()
  result = {
      'images_per_s': ours.batch_size / (step_ms / 1e3), 'step_ms': step_ms, 'tflops': tflops,
      'mfu': tflops / (peak * ours.devices), 'peak_tflops_per_device': peak,
      'flops_per_step': ours.flops_per_step, 'gflop_per_image': ours.flops_per_step / ours.batch_size / 1e9,
      'device': device.platform, 'device_kind': device.device_kind, 'devices': ours.devices,
      'dtype': dtype, 'jax_version': jax.__version__, 'batch_size': ours.batch_size,
      'image_size': config.model.image_size, 'input_size': ours.input_size, 'parameters': params,
      'augment': bool(config.augment.enabled), 'compile_seconds': ours.compile_seconds,
      'peak_memory_bytes': memory, 'peak_memory_kind': memory_kind,
      'xla_flags': os.environ.get('XLA_FLAGS', ''),
  }
  if peers:
    best = min((name for name, _ in peers), key=lambda n: statistics.median(r[n] for r in rounds))
    peer_ms = statistics.median(r[best] for r in rounds)
    result.update({'peer': f'torch {__import__("torch").__version__} {best}',
                   'peer_images_per_s': ours.batch_size / (peer_ms / 1e3),
                   'ratio_vs_peer': statistics.median(r[best] / r['ours_ms'] for r in rounds)})
  if FLAGS.end_to_end:
    result.update(end_to_end(config, ours, FLAGS.steps))
  print(f"ours: {result['images_per_s']:.1f} images/s, {step_ms:.1f} ms/step, "
        f"{result['gflop_per_image']:.1f} GFLOP/image, {tflops:.3f} TFLOP/s = {100 * result['mfu']:.1f}% of "
        f"{peak:.2f} TFLOP/s ({dtype} matmul peak per device)")
  if peers:
    print(f"peer ({result['peer']}): {result['peer_images_per_s']:.1f} images/s; "
          f"ours/peer = {result['ratio_vs_peer']:.2f}")
  if FLAGS.end_to_end:
    print(f"end to end: {result['end_to_end_images_per_s']:.1f} images/s, "
          f"{100 * result['data_wait_fraction']:.1f}% of the time waiting for data")
  cli.print_result(result, FLAGS.output)


if __name__ == '__main__':
  cli.run(main)
