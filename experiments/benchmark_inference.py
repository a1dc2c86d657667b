"""Inference speed on this CPU: JAX (jit), ONNX Runtime and TFLite (LiteRT) side by side.

    ./run.sh benchmark_inference --workdir=runs/quick
    python -m experiments.benchmark_inference --config=configs/base.py --dtypes=float32,int8

For a trained workdir (or, with --config, freshly initialised weights: speed does not depend
on them) it exports the network to ONNX and TFLite (fixed batch 1 and fixed batch N) in a
temporary folder, checks each agrees with JAX on the timed inputs, then times
batch-1 latency (median and p90 over --repeats calls, after warm-up) and batch-N throughput
at the model's input size, every runtime with --threads threads. Inputs are at the model
size: resizing a photo is not timed. Prints a markdown table; the last line is one JSON
object. Needs requirements-export.txt.
"""

import os
import statistics
import tempfile

from absl import flags
from ml_collections import config_flags

from experiments import cli

flags.DEFINE_string('workdir', None, 'A trained workdir to time (its best checkpoint).')
config_flags.DEFINE_config_file('config', None, 'Or a config: its network with fresh weights.', lock_config=True)
flags.DEFINE_list('runtimes', ['jax', 'onnxruntime', 'tflite'], 'Runtimes to time.')
flags.DEFINE_list('dtypes', ['float32'], 'Weight types for ONNX and TFLite: float32, float16, int8.')
flags.DEFINE_integer('batch', 8, 'Batch size for the throughput figure.')
flags.DEFINE_integer('threads', 0, 'Threads per runtime; 0 = one per core.')
flags.DEFINE_integer('repeats', 30, 'Timed batch-1 calls (a third as many batch-N calls, at least 3).')
flags.DEFINE_integer('warmup', 3, 'Untimed calls first.')
flags.DEFINE_string('output', None, 'Also write the JSON result to this file.')
FLAGS = flags.FLAGS


# The runtimes this tool times, and the export format each runs.
RUNTIMES = {'jax': None, 'onnxruntime': 'onnx', 'tflite': 'tflite'}


def percentile(values, q: float) -> float:
  ordered = sorted(values)
  return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def network(workdir, config):
  """(inference state, config, label) of the network to time."""
  import jax

  from unet_flax import predict, steps
  from unet_flax.data import parts as parts_lib
  if workdir:
    predictor = predict.Predictor(workdir)
    return predictor.state, predictor.config, f'{workdir} (step {predictor.step})'
  from unet_flax import configuration
  configuration.validate(config, devices=1, hosts=1)
  state = steps.create_state(jax.random.key(config.seed), config, parts_lib.num_classes(config.target), 1)
  return steps.inference_state(state), config, 'fresh weights'


def runners(state, size, threads, folder):
  """(runtime, dtype, batch-1 model, batch-N model) for each runtime and dtype asked for."""
  import jax

  from unet_flax import export, exported
  jitted = jax.jit(export.inference_function(state, size, 'logits'))
  jax_fn = lambda x: jitted(x).block_until_ready()
  for runtime in FLAGS.runtimes:
    if runtime == 'jax':
      yield 'JAX jit', 'float32', jax_fn, jax_fn
      continue
    fmt = RUNTIMES[runtime]
    for dtype in FLAGS.dtypes:
      # One file per batch size: ONNX needs a fixed batch, and LiteRT runs a dynamic-batch
      # model without its XNNPACK delegate (measured 14x slower at batch 1).
      one, many = (exported.ExportedModel(export.write_model(
          state, size, fmt, dtype, b, 'logits', _mkdir(os.path.join(folder, f'{fmt}_{dtype}_{b}'))), threads)
          for b in (1, FLAGS.batch))
      yield f'{one.runtime}', dtype, one, many


def _mkdir(path):
  os.makedirs(path)
  return path


def main(argv):
  del argv
  import jax
  import numpy as np

  from unet_flax import export, exported, speed
  if bool(FLAGS.workdir) == bool(FLAGS.config):
    cli.fail('give exactly one of --workdir=RUN or --config=configs/X.py.')
  unknown = set(FLAGS.runtimes) - set(RUNTIMES) | set(FLAGS.dtypes) - set(export.DTYPES)
  if unknown or FLAGS.batch < 1 or FLAGS.repeats < 1:
    cli.fail(f'--runtimes takes {",".join(RUNTIMES)}; --dtypes {",".join(export.DTYPES)}; --batch and --repeats '
             f'at least 1 (got {sorted(unknown) or ""} batch={FLAGS.batch} repeats={FLAGS.repeats}).')
  threads = FLAGS.threads or os.cpu_count()
  state, config, source = network(FLAGS.workdir, FLAGS.config)
  size = config.model.image_size
  rng = np.random.default_rng(0)
  x1 = rng.random((1, size, size, 3), np.float32)
  xn = rng.random((FLAGS.batch, size, size, 3), np.float32)
  rows = []
  with tempfile.TemporaryDirectory() as folder:
    outs = []
    for runtime, dtype, one, many in runners(state, size, threads, folder):
      outs.append(np.asarray(many(xn)))
      agree = exported.agreement(outs[0], outs[-1])  # against the first runtime: JAX, when timed
      lat = speed.time_calls(lambda: one(x1), FLAGS.repeats, FLAGS.warmup)
      thr = speed.time_calls(lambda: many(xn), max(3, FLAGS.repeats // 3), FLAGS.warmup)
      rows.append({'runtime': runtime, 'dtype': dtype, 'latency_ms_median': 1e3 * statistics.median(lat),
                   'latency_ms_p90': 1e3 * percentile(lat, 0.9),
                   'images_per_s': FLAGS.batch / statistics.median(thr),
                   'max_abs_diff_vs_first': agree['max_abs_diff'], 'mask_dice_vs_first': agree['dice']})
      print(f'{runtime} {dtype}: batch 1 {rows[-1]["latency_ms_median"]:.1f} ms, batch {FLAGS.batch} '
            f'{rows[-1]["images_per_s"]:.1f} images/s', flush=True)
  print(f'\nInference at {size}x{size} ({config.model.base_features} base features, depth {config.model.depth}), '
        f'{threads} threads, {source}:\n')
  print(f'| runtime | weights | batch 1 median ms | batch 1 p90 ms | batch {FLAGS.batch} images/s | '
        f'30 fps at batch 1 | mask Dice vs {rows[0]["runtime"]} |')
  print('|---|---|---|---|---|---|---|')
  for r in rows:
    print(f'| {r["runtime"]} | {r["dtype"]} | {r["latency_ms_median"]:.1f} | {r["latency_ms_p90"]:.1f} | '
          f'{r["images_per_s"]:.1f} | {"yes" if r["latency_ms_p90"] <= 1000 / 30 else "no"} | '
          f'{r["mask_dice_vs_first"]:.4f} |')
  result = {'image_size': size, 'base_features': config.model.base_features, 'depth': config.model.depth,
            'batch': FLAGS.batch, 'threads': threads, 'source': source, 'cpu_count': os.cpu_count(),
            'jax': jax.__version__, 'rows': rows}
  cli.print_result(result, FLAGS.output)


if __name__ == '__main__':
  cli.run(main)
