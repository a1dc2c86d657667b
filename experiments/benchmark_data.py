"""Data benchmarks: dataset build speed and input-pipeline throughput.

    taskset -c 0 python -m experiments.benchmark_data --what=pipeline,augment   # per core
    python -m experiments.benchmark_data --what=build --build_images=300         # all cores

build     writes a CelebAMask-HQ-shaped tree (1024x1024 JPEG images, 512x512 PNG masks, from
          the synthetic faces) and times the full TFDS build of the `celebamask_hq` config
          to 256x256, in images/s (and the projected time for all 30,000 images).
pipeline  host side of training batches (read, JPEG/zlib decode, target, batch) with one
          Grain thread, in images/s.
augment   the on-device augmentation (flip, scale/crop, rotation, colour jitter) as jitted
          on this machine's backend, in images/s.
"""

import os
import shutil
import tempfile
import time

from absl import flags

from experiments import cli

BENCHMARKS = ('build', 'pipeline', 'augment')
flags.DEFINE_list('what', list(BENCHMARKS), 'Which benchmarks to run.')
flags.DEFINE_integer('build_images', 300, 'Images in the CelebAMask-HQ-shaped tree for `build`.')
flags.DEFINE_string('data_dir', '~/tensorflow_datasets', 'Where the synthetic dataset is (built if absent).')
flags.DEFINE_string('target', 'eyeglasses', 'Training target for `pipeline`.')
flags.DEFINE_integer('threads', 1, 'Grain read threads for `pipeline` (0: read in the main thread).')
flags.DEFINE_integer('batch_size', 64, 'Batch size for pipeline and augment.')
flags.DEFINE_integer('batches', 40, 'Batches timed for pipeline and augment.')
flags.register_validator('what', lambda what: set(what) <= set(BENCHMARKS),
                         f'--what takes a comma-separated list of {", ".join(BENCHMARKS)}')
FLAGS = flags.FLAGS


def _write_celebamask_shaped_tree(root, n):
  import numpy as np
  from PIL import Image

  from unet_flax.data import celebamask_hq, synthetic
  synthetic.write_tree(root, seed=0, sizes={'train': n - 2 * (n // 10), 'validation': n // 10,
                                            'test': n // 10})
  for i in range(n):  # the real download's images are 1024x1024 JPEG
    path = os.path.join(root, celebamask_hq.IMG_DIR, f'{i}.jpg')
    with Image.open(path) as img:
      big = img.resize((1024, 1024), Image.Resampling.BICUBIC)
    big.save(path, quality=int(np.random.default_rng(i).integers(85, 96)))


def bench_build():
  import ml_collections

  from unet_flax.data import dataset
  root = tempfile.mkdtemp(prefix='celebamask_shaped_')
  data_dir = tempfile.mkdtemp(prefix='tfds_bench_')
  n = FLAGS.build_images
  try:
    _write_celebamask_shaped_tree(root, n)
    cfg = ml_collections.ConfigDict({'config': 'celebamask_hq', 'data_dir': data_dir, 'manual_dir': root})
    start = time.perf_counter()
    dataset.prepare(cfg)
    seconds = time.perf_counter() - start
  finally:
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(data_dir, ignore_errors=True)
  rate = n / seconds
  print(f'build: {n} images (1024x1024 JPEG + 18 masks 512x512 -> 256x256) in {seconds:.1f} s = '
        f'{rate:.1f} images/s on {os.cpu_count()} cores; all 30,000 CelebAMask-HQ images: '
        f'{30000 / rate / 60:.1f} min')


def _synthetic_split():
  import ml_collections

  from unet_flax.data import dataset, pipeline
  cfg = ml_collections.ConfigDict({'config': 'synthetic', 'data_dir': FLAGS.data_dir, 'manual_dir': ''})
  return pipeline.open_split(dataset.prepare(cfg), 'train')


def bench_pipeline():
  from unet_flax.data import parts, pipeline
  split = _synthetic_split()
  target = parts.TargetMaker(FLAGS.target, split.part_names)
  it = pipeline.train_iterator(split, target, global_batch_size=FLAGS.batch_size, seed=0, threads=FLAGS.threads)
  next(it)
  start = time.perf_counter()
  for _ in range(FLAGS.batches):
    next(it)
  rate = FLAGS.batches * FLAGS.batch_size / (time.perf_counter() - start)
  print(f'pipeline (host: read, decode, {FLAGS.target} target, batch; {FLAGS.threads} Grain threads): '
        f'{rate:.0f} images/s '
        f'(affinity: {len(os.sched_getaffinity(0))} core(s))')


def bench_augment():
  import jax
  import jax.numpy as jnp
  import numpy as np

  from configs import base
  from unet_flax import augment
  cfg = base.get_config().augment
  images = jnp.asarray(np.random.default_rng(0).random((FLAGS.batch_size, 256, 256, 3), np.float32))
  labels = jnp.zeros((FLAGS.batch_size, 256, 256), jnp.uint8)
  fn = jax.jit(lambda k, i, l: augment.augment(k, i, l, cfg, jnp.array([0, 1])))
  jax.block_until_ready(fn(jax.random.key(0), images, labels))
  start = time.perf_counter()
  for step in range(FLAGS.batches):
    out = fn(jax.random.key(step), images, labels)
  jax.block_until_ready(out)
  rate = FLAGS.batches * FLAGS.batch_size / (time.perf_counter() - start)
  print(f'augment (jitted, {jax.devices()[0].device_kind}): {rate:.0f} images/s at 256x256 '
        f'(affinity: {len(os.sched_getaffinity(0))} core(s))')


def main(argv):
  del argv
  for name, bench in zip(BENCHMARKS, (bench_build, bench_pipeline, bench_augment)):
    if name in FLAGS.what:
      bench()


if __name__ == '__main__':
  cli.run(main)
