"""The CPU speed comparison point: U-Net 16..256 at 128x128, batch 8, Adam, BCE, no augmentation.

    python -m experiments.benchmark --config=configs/bench_cpu.py

Times our train step beside the same network in PyTorch (`pip install -r
requirements-bench.txt`); the aim is at least the PyTorch peer's images/s (docs/speed.md).
Measured results are in docs/benchmarks.md. It also trains, like any config:
`python -m experiments.main --config=configs/bench_cpu.py`.
"""

from configs import base


def get_config():
  c = base.get_config()
  c.model.image_size = 128
  c.model.base_features = 16
  c.batch_size = 8
  c.eval_batch_size = 8
  c.augment.enabled = False
  return c
