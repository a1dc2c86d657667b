"""GPU readiness without a GPU: the real train steps, eval step and predictor lower for CUDA on this CPU.

`jax.export` lowers for a platform other than the one it runs on. What it cannot show (speed,
memory on the card) is in docs/gpu.md, with the commands that measure it on a GPU. What it does
show: every op has a CUDA lowering, and nothing in the steps calls into CPU-only libraries
(LAPACK, DUCC's FFT) or back into Python on the host. No compilation: only tracing and
lowering, so this takes seconds.
"""

import importlib
import re

import jax
import jax.numpy as jnp
import pytest

from configs import test as test_config
from unet_flax import losses, steps
from unet_flax.data import parts as parts_lib

# Custom-call targets that exist only on the CPU backend: LAPACK's solvers, DUCC's FFT, and
# anything naming the CPU (its Python callbacks among them).
CPU_ONLY = ('lapack', 'ducc', 'cpu')
DATASET_SIZE = 128  # twice the model's input: the steps' resize is lowered too, as training runs it


def custom_calls(module_text: str) -> set[str]:
  return set(re.findall(r'custom_call @([\w.$-]+)', module_text))


def cpu_only_calls(module_text: str) -> set[str]:
  return {c for c in custom_calls(module_text) if any(word in c.lower() for word in CPU_ONLY)}


def cuda_module(jitted, *args, **kwargs) -> str:
  exported = jax.export.export(jitted, platforms=('cuda',))(*args, **kwargs)
  assert exported.platforms == ('cuda',)
  return exported.mlir_module()


def test_the_check_finds_a_cpu_only_call():
  """The check is not vacuous: a CPU lowering of a matrix inverse calls LAPACK, its CUDA lowering does not."""
  matrix = jax.ShapeDtypeStruct((4, 4), jnp.float32)
  on_cpu = jax.export.export(jax.jit(jnp.linalg.inv), platforms=('cpu',))(matrix).mlir_module()
  assert any('lapack' in c for c in cpu_only_calls(on_cpu)), custom_calls(on_cpu)
  assert not cpu_only_calls(cuda_module(jax.jit(jnp.linalg.inv), matrix))


def _config(kind):
  cfg = test_config.get_config()
  cfg.model.dtype = 'bfloat16'  # how a GPU trains: bf16 compute, float32 parameters
  cfg.model.norm = 'batch'  # statistics synchronised across devices: the collectives are lowered too
  if kind == 'pix2pix':
    pix2pix = importlib.import_module('configs.pix2pix_lips_eyes').get_config()
    cfg.model.kind, cfg.optimizer, cfg.loss = 'pix2pix', pix2pix.optimizer, pix2pix.loss
  else:
    cfg.model.dropout = 0.1
  return cfg


@pytest.mark.parametrize('kind', ['unet', 'pix2pix'])
def test_train_eval_and_predict_steps_lower_for_cuda_without_cpu_only_calls(kind):
  cfg = _config(kind)
  target = parts_lib.TargetMaker.from_config(cfg, parts_lib.dataset_parts(cfg.dataset.config))
  # Shapes only: the state is never materialised, so nothing compiles.
  state = jax.eval_shape(lambda: steps.create_state(jax.random.key(cfg.seed), cfg, target.num_classes, 100))
  p_train, p_eval = steps.pmap_steps(losses.make_loss(cfg.loss), cfg, target.mirror_label_map)
  devices = jax.local_device_count()
  per_device = cfg.batch_size // devices
  images = (devices, per_device, DATASET_SIZE, DATASET_SIZE)
  batch = {'image': jax.ShapeDtypeStruct(images + (3,), jnp.float32),
           'label': jax.ShapeDtypeStruct(images, jnp.uint8),
           'valid': jax.ShapeDtypeStruct(images[:2], jnp.bool_)}
  # jax.pmap is jit over shard_map, so jit(the pmapped step) lowers the very program training runs,
  # over this host's local devices.
  modules = {
      'train': cuda_module(jax.jit(p_train), state, batch),
      'eval': cuda_module(jax.jit(p_eval), state, batch),
      'predict': cuda_module(steps.predict_step, steps.inference_state(state),
                             jax.ShapeDtypeStruct((2, DATASET_SIZE, DATASET_SIZE, 3), jnp.float32),
                             image_size=cfg.model.image_size),
  }
  for name, text in modules.items():
    assert not cpu_only_calls(text), (name, cpu_only_calls(text))
    convolutions = [l for l in text.splitlines() if 'stablehlo.convolution' in l]
    assert convolutions and any('bf16' in l for l in convolutions), name  # the U-Net computes in bf16
  assert 'all_reduce' in modules['train']  # gradients and statistics are averaged over the devices
