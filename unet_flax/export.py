"""Exports a trained workdir's network to ONNX, TFLite or a TF SavedModel, and keeps an export
only after its own runtime has reproduced the JAX model's masks on real examples.

The route, one environment with the training pins (requirements-export.txt):
  JAX --jax2tf--> TF function (weights folded in as constants) --> SavedModel, for TF Serving
                                    \\--TFLite converter--> .tflite (float32, float16 or int8 weights)
                                                              \\--tf2onnx--> .onnx
jax2tf in JAX >= 0.7 writes the network as StableHLO inside one XlaCallModule op. TF runs that
op, and the TFLite converter lowers it to builtin TFLite ops, but tf2onnx cannot read it, so
ONNX is converted from the .tflite (tf2onnx reads TFLite flatbuffers). jax2onnx would be the
direct route, but it pins orbax-checkpoint < 0.11.37 and cannot be installed beside our
0.12.8 (checked with pip; installed without its pins it converted this U-Net with the same
parity, but wrote mismatched NCHW/NHWC shape annotations that onnxruntime warns about).

A consequence of the TFLite step: ONNX files have a fixed batch (the converter bakes the
batch into the reshape of each transposed convolution); TFLite and SavedModel may be
exported with a dynamic batch, but LiteRT runs a dynamic-batch model without its XNNPACK
delegate: 39 ms against 2.7 ms per 128x128 image here, so fixed batch 1 is the default.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from unet_flax import exported, faces, pictures, predict, real_photos, steps
from unet_flax import workdir as workdir_lib
from unet_flax.errors import UserError

FORMATS = tuple(exported.FILES)
DTYPES = ('float32', 'float16', 'int8')
OUTPUTS = ('logits', 'probabilities')
# float32 and float16 exports must reproduce the JAX masks to this Dice; int8 is reported only.
PARITY_DICE = 0.999
ONNX_OPSET = 17
VERSIONED = ('jax', 'flax', 'tensorflow', 'tf2onnx', 'onnx', 'onnxruntime', 'ai-edge-litert')


class ExportError(UserError):
  """An export that cannot be made as asked, or whose runtime disagrees with the JAX model."""


def check_request(fmt: str, dtype: str, batch: int, output: str) -> None:
  problems = [f'--{flag}={value}: use one of {", ".join(choices)}' for flag, value, choices in (
      ('format', fmt, FORMATS), ('dtype', dtype, DTYPES), ('outputs', output, OUTPUTS)) if value not in choices]
  if batch < 0:
    problems.append(f'--batch={batch}: give a batch size, or 0 for a dynamic batch')
  if fmt == 'savedmodel' and dtype != 'float32':
    problems.append(f'--format=savedmodel exports float32 only; use --format=tflite or onnx for {dtype}')
  if fmt == 'onnx' and batch == 0:
    problems.append('--format=onnx needs a fixed --batch (ONNX is converted from TFLite, which fixes '
                    'it); --batch=0 (dynamic) works for tflite and savedmodel')
  if problems:
    raise ExportError('; '.join(problems) + '.')


def _import_tensorflow():
  try:
    import tensorflow as tf
  except ImportError:
    raise ExportError(f'exporting needs TensorFlow, tf2onnx and the runtimes: '
                      f'{exported.EXPORT_REQUIREMENTS} (or ./run.sh export ...).') from None
  tf.get_logger().setLevel('ERROR')
  return tf


def inference_function(state, image_size: int, output: str):
  """The network as a pure function of [N, S, S, 3] float images in [0, 1], its weights closed
  over: logits, or probabilities (sigmoid for a binary target, softmax over classes)."""
  def infer(images):
    logits = steps.predict_step(state, images, image_size=image_size)
    if output == 'logits':
      return logits
    return jax.nn.sigmoid(logits) if logits.shape[-1] == 1 else jax.nn.softmax(logits, axis=-1)
  return infer


def tf_module(fn, image_size: int, batch: int):
  """A tf.Module whose `infer` is `fn` as a TF function with one input named `images`; batch 0 is
  dynamic. The TFLite converter and SavedModel both take it."""
  tf = _import_tensorflow()
  from jax.experimental import jax2tf
  shape = [batch or None, image_size, image_size, 3]
  polymorphic = None if batch else [f'(b, {image_size}, {image_size}, 3)']
  module = tf.Module()
  module.infer = tf.function(jax2tf.convert(fn, polymorphic_shapes=polymorphic, with_gradient=False),
                             autograph=False, input_signature=[tf.TensorSpec(shape, tf.float32, name='images')])
  return module


def to_tflite(module, dtype: str) -> bytes:
  tf = _import_tensorflow()
  converter = tf.lite.TFLiteConverter.from_concrete_functions([module.infer.get_concrete_function()], module)
  if dtype != 'float32':  # weights stored as float16, or as int8 with float activations
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if dtype == 'float16':
      converter.target_spec.supported_types = [tf.float16]
  return converter.convert()


def tflite_to_onnx(tflite_path: str, onnx_path: str, dtype: str) -> None:
  _import_tensorflow()
  import tf2onnx
  with warnings.catch_warnings():  # tf2onnx reads the flatbuffer with the deprecated tf.lite.Interpreter
    warnings.simplefilter('ignore')
    model, _ = tf2onnx.convert.from_tflite(tflite_path, opset=ONNX_OPSET)
  if dtype == 'float16':
    _store_weights_as_float16(model)
  with open(onnx_path, 'wb') as f:
    f.write(model.SerializeToString())


def _store_weights_as_float16(model) -> None:
  """tf2onnx expands a float16 TFLite's weights back to float32. Store every float32 weight
  of more than 16 values as float16 with a Cast in front, as the float16 TFLite does."""
  import onnx
  from onnx import helper, numpy_helper
  graph = model.graph
  casts = []
  for init in graph.initializer:
    if init.data_type != onnx.TensorProto.FLOAT or np.prod(init.dims) <= 16:
      continue
    name = init.name
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), f'{name}__f16'))
    casts.append(helper.make_node('Cast', [f'{name}__f16'], [name], to=onnx.TensorProto.FLOAT,
                                  name=f'{name}__to_f32'))
  nodes = list(graph.node)
  del graph.node[:]
  graph.node.extend(casts + nodes)


def write_model(state, image_size: int, fmt: str, dtype: str, batch: int, output: str, folder: str) -> str:
  """Writes the network into `folder` as `fmt`; returns the model's path."""
  module = tf_module(inference_function(state, image_size, output), image_size, batch)
  path = os.path.join(folder, exported.FILES[fmt])
  if fmt == 'savedmodel':
    _import_tensorflow().saved_model.save(module, path,
                                          signatures={'serving_default': module.infer.get_concrete_function()})
    return path
  tflite_path = path if fmt == 'tflite' else os.path.join(folder, 'intermediate.tflite')
  with open(tflite_path, 'wb') as f:
    f.write(to_tflite(module, dtype))
  if fmt == 'onnx':
    tflite_to_onnx(tflite_path, path, dtype)
    os.remove(tflite_path)
  return path


def parity_images(config, count: int, images_dir: str | None = None) -> tuple[np.ndarray, str]:
  """[N, S, S, 3] float images for the parity check, and where they came from: the first
  `count` test examples of the workdir's dataset, or the images of `images_dir`."""
  if images_dir:
    from unet_flax.data.checks import UNREADABLE, image_files
    if not os.path.isdir(images_dir):
      raise ExportError(f'--parity_images={images_dir} is not a folder of images.')
    images = []
    for path in image_files(images_dir)[:count]:
      try:
        images.append(predict.load_image(path))
      except UNREADABLE:
        continue
    if not images:
      raise ExportError(f'--parity_images={images_dir} holds no readable images.')
    return predict.model_input(images, config.model.image_size), f'{len(images)} images of {images_dir}'
  from unet_flax.data import dataset as dataset_lib
  builder = dataset_lib.make_builder(config.dataset)
  if not dataset_lib.is_prepared(builder):
    raise ExportError(f'the parity check needs the test split of face_segmentation/{builder.builder_config.name} '
                      f'in {builder.data_dir}, which is not prepared here; give --parity_images=FOLDER '
                      f'(photos like the ones the model will see) instead.')
  images, _ = predict.test_examples(config, count)
  return images, f'first {len(images)} test examples of face_segmentation/{builder.builder_config.name}'


def model_card(predictor, workdir, fmt, dtype, batch, output, model, parity) -> dict:
  """What an app needs to run the file correctly, and where it came from."""
  config, size, k = predictor.config, predictor.image_size, predictor.num_classes
  binary = k == 1
  synthetic = config.dataset.config.startswith('synthetic')
  return {
      'format': fmt, 'file': os.path.basename(model.path), 'bytes': _size(model.path),
      'sha256': _sha256(model.path) if os.path.isfile(model.path) else None, 'dtype': dtype,
      'dtype_means': {'float32': 'float32 weights and compute',
                      'float16': 'float16 weights, float32 compute',
                      'int8': 'int8 weights (dynamic-range quantisation), float activations'}[dtype],
      'input': {'name': model.input_name, 'shape': [batch or None, size, size, 3], 'layout': 'NHWC',
                'dtype': 'float32', 'colour': 'RGB', 'range': [0.0, 1.0],
                'normalisation': 'pixel / 255; no mean or standard deviation',
                'resize': f'resize the face crop to {size}x{size} (bilinear or better)',
                'framing': 'one face framed as CelebA-HQ frames it: centred, its dlib box about '
                           f'{faces.FRAMING["box_width"]:.0%} of the width (unet_flax.faces)'},
      'output': {'shape': [batch or None, size, size, k], 'kind': output, 'target': config.target,
                 'classes': list(predictor.class_names),
                 'decision': (('logit > 0' if output == 'logits' else 'probability > 0.5')
                              if binary else 'argmax over the channels (channel i is classes[i])'),
                 **({'face_check': _FACE_CHECK} if binary else {'palette': pictures.PALETTE[:k].tolist()})},
      'source': {'workdir': os.path.abspath(workdir), 'checkpoint_step': predictor.step,
                 'config': config.to_dict(), 'test_metrics': workdir_lib.Workdir(workdir).read_eval('test'),
                 'synthetic_data': synthetic,
                 **({'real_photos': real_photos.summary(config.target)} if synthetic else {})},
      'parity': parity,
      'exported_with': workdir_lib.package_versions(VERSIONED),
      'created': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
  }


# What experiments.predict does beyond the decision, for an app that wants the same masks.
_FACE_CHECK = (f'experiments.predict keeps the mask of a detected face only if the target covers at least '
               f'{predict.MIN_FOUND_SHARE * 100:g}% of the crop in the face\'s square and with that square widened '
               f'{" and ".join(f"{f:g}" for f in predict.CONFIRM_FRAMINGS)} times about its centre '
               f'(unet_flax.predict.CONFIRM_FRAMINGS, MIN_FOUND_SHARE); the real-photo figures assume it')


def _size(path: str) -> int:
  if os.path.isfile(path):
    return os.path.getsize(path)
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def _sha256(path: str) -> str:
  import hashlib
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def export_workdir(workdir: str | os.PathLike, fmt: str, dtype: str = 'float32', output_dir: str | None = None,
                   checkpoint: str = 'best', batch: int = 1, output: str = 'logits',
                   parity_examples: int = 8, parity_images_dir: str | None = None,
                   log=print) -> str:
  """Exports `workdir`'s checkpoint; returns the model's path. The file is moved into
  `output_dir` only after its runtime reproduced the JAX model on the parity images."""
  check_request(fmt, dtype, batch, output)
  output_dir = output_dir or workdir_lib.Workdir(workdir).export_dir(fmt, dtype)
  if os.path.exists(output_dir) and (not os.path.isdir(output_dir) or os.listdir(output_dir)):
    raise ExportError(f'--output={output_dir} already exists and is not an empty folder; choose another '
                      f'or remove it (an earlier export is never overwritten).')
  _import_tensorflow()  # before the slow restore: a missing package is named at once
  predictor = predict.Predictor(workdir, checkpoint)
  images, source = parity_images(predictor.config, parity_examples, parity_images_dir)
  reference = np.asarray(jax.jit(inference_function(predictor.state, predictor.image_size, output))(
      jnp.asarray(images)))
  parent = os.path.dirname(os.path.abspath(output_dir))
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix='.export-', dir=parent)
  umask = os.umask(0)
  os.umask(umask)
  os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it private; the export is an ordinary folder
  try:
    log(f'Exporting {workdir} (step {predictor.step}) to {fmt} {dtype}, batch {batch or "dynamic"}...')
    path = write_model(predictor.state, predictor.image_size, fmt, dtype, batch, output, staging)
    model = exported.ExportedModel(path)
    parity = {'runtime': model.runtime, 'examples': source, 'dice_bar': PARITY_DICE if dtype != 'int8' else None,
              **exported.agreement(reference, model(images), output)}
    log(f'Parity with JAX in {model.runtime} on {source}: max |{output} difference| '
        f'{parity["max_abs_diff"]:.3g}, mask Dice {parity["dice"]:.5f}')
    if parity['dice_bar'] is not None and parity['dice'] < PARITY_DICE:
      raise ExportError(f'the {fmt} {dtype} export disagrees with the JAX model: mask Dice '
                        f'{parity["dice"]:.5f} < {PARITY_DICE} on {source} (max |difference| '
                        f'{parity["max_abs_diff"]:.3g}); nothing was written. Try --dtype=float32.')
    with open(os.path.join(staging, exported.MODEL_CARD), 'w') as f:
      json.dump(model_card(predictor, workdir, fmt, dtype, batch, output, model, parity), f, indent=2)
    if os.path.isdir(output_dir):
      os.rmdir(output_dir)  # empty, checked above
    os.rename(staging, output_dir)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return os.path.join(output_dir, exported.FILES[fmt])
