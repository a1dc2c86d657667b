"""Runs a model written by `unet_flax.export` (ONNX, TFLite or a TF SavedModel) in its own
runtime, reads the model card beside it, and measures how far two models' masks agree.

Only the runtime a file needs is imported (onnxruntime, LiteRT or TensorFlow), so predicting
with an .onnx file needs neither TensorFlow nor a training workdir.
"""

from __future__ import annotations

import json
import os

import numpy as np

from unet_flax import configuration, predict
from unet_flax.errors import UserError

MODEL_CARD = 'model_card.json'
FILES = {'onnx': 'model.onnx', 'tflite': 'model.tflite', 'savedmodel': 'savedmodel'}
EXPORT_REQUIREMENTS = 'pip install -r requirements-export.txt'


def model_format(path: str) -> str:
  """'onnx', 'tflite' or 'savedmodel' for an exported model's path (a file, or a SavedModel folder)."""
  if os.path.isdir(path) and os.path.exists(os.path.join(path, 'saved_model.pb')):
    return 'savedmodel'
  if not os.path.exists(path):
    raise UserError(f'--model={path} does not exist; give an exported model.onnx, model.tflite or '
                    f'SavedModel folder (python -m experiments.export writes them).')
  ext = os.path.splitext(path)[1].lower()
  if ext in ('.onnx', '.tflite'):
    return ext[1:]
  raise UserError(f'--model={path}: not an .onnx or .tflite file, nor a SavedModel folder '
                  f'(one holding saved_model.pb).')


def card_path(model_path: str) -> str:
  """The model card sits in the folder that holds the model file (or the SavedModel folder)."""
  return os.path.join(os.path.dirname(os.path.abspath(model_path.rstrip(os.sep))), MODEL_CARD)


def read_card(model_path: str) -> dict:
  path = card_path(model_path)
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    raise UserError(f'{path} not found: an exported model needs the model_card.json written beside '
                    f'it by experiments.export (it says the input size, output kind and classes).') from None
  except json.JSONDecodeError as e:
    raise UserError(f'{path} is not valid JSON ({e.msg} at line {e.lineno}); export the model again.') from None


def _require(module: str, fmt: str):
  import importlib
  try:
    return importlib.import_module(module)
  except ImportError:
    raise UserError(f'running an exported {fmt} model needs {module.split(".")[0]}, which is not installed: '
                    f'{EXPORT_REQUIREMENTS}') from None


class ExportedModel:
  """`model(images)`: [N, S, S, 3] float32 images in [0, 1] -> [N, S, S, K] float32 scores, in
  the file's own runtime. A model exported with a fixed batch is run in chunks of that
  batch (the last one padded), so any N works."""

  def __init__(self, path: str, num_threads: int | None = None):
    self.path = path
    self.format = model_format(path)
    self.batch = None  # None: any batch size
    getattr(self, f'_load_{self.format}')(path, num_threads)

  def _load_onnx(self, path, num_threads):
    ort = _require('onnxruntime', 'ONNX')
    options = ort.SessionOptions()
    if num_threads:
      options.intra_op_num_threads = num_threads
    self._session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    inp = self._session.get_inputs()[0]
    self.input_name = inp.name
    self.batch = inp.shape[0] if isinstance(inp.shape[0], int) else None
    self.runtime = f'onnxruntime {ort.__version__}'
    self._run = lambda x: self._session.run(None, {self.input_name: x})[0]

  def _load_tflite(self, path, num_threads):
    litert = _require('ai_edge_litert.interpreter', 'TFLite')
    self._interpreter = litert.Interpreter(model_path=path, num_threads=num_threads)
    self._input = self._interpreter.get_input_details()[0]
    self.input_name = self._input['name']
    self._output_index = self._interpreter.get_output_details()[0]['index']
    self.batch = None if self._input['shape_signature'][0] == -1 else int(self._input['shape'][0])
    self._allocated_batch = None
    import importlib.metadata
    self.runtime = f'LiteRT {importlib.metadata.version("ai-edge-litert")}'
    self._run = self._run_tflite

  def _run_tflite(self, x):
    if self._allocated_batch != len(x):
      if self.batch is None:
        self._interpreter.resize_tensor_input(self._input['index'], list(x.shape))
      self._interpreter.allocate_tensors()
      self._allocated_batch = len(x)
    self._interpreter.set_tensor(self._input['index'], x)
    self._interpreter.invoke()
    return self._interpreter.get_tensor(self._output_index)

  def _load_savedmodel(self, path, num_threads):
    tf = _require('tensorflow', 'SavedModel')
    if num_threads:
      tf.config.threading.set_intra_op_parallelism_threads(num_threads)
    self._loaded = tf.saved_model.load(path)
    signature = self._loaded.signatures['serving_default']
    (name, spec), = signature.structured_input_signature[1].items()
    self.input_name = name
    self.batch = spec.shape[0]
    self.runtime = f'TensorFlow {tf.__version__}'
    self._run = lambda x: next(iter(signature(**{name: tf.constant(x)}).values())).numpy()

  def __call__(self, images: np.ndarray) -> np.ndarray:
    images = np.ascontiguousarray(images, np.float32)
    if self.batch is None or len(images) == self.batch:
      return np.asarray(self._run(images))
    padded = np.concatenate([images, np.zeros((-len(images) % self.batch,) + images.shape[1:], np.float32)])
    out = [np.asarray(self._run(padded[start:start + self.batch])) for start in range(0, len(padded), self.batch)]
    return np.concatenate(out)[:len(images)]


class ExportedPredictor(predict.MaskPredictor):
  """`experiments.predict --model=...`: an exported model and its card, in place of a workdir."""

  def __init__(self, path: str, num_threads: int | None = None):
    self.card = read_card(path)
    self.model = ExportedModel(path, num_threads)
    self.image_size = self.card['input']['shape'][1]
    self.class_names = tuple(self.card['output']['classes'])
    self.num_classes = self.card['output']['shape'][-1]
    self.output = self.card['output']['kind']
    self.step = self.card['source']['checkpoint_step']
    self.config = configuration.upgrade(self.card['source']['config'])

  def scores(self, images: np.ndarray) -> np.ndarray:
    return self.model(images)


def agreement(reference: np.ndarray, other: np.ndarray, output: str = 'logits') -> dict:
  """How far `other`'s scores and masks are from `reference`'s ([N, H, W, K] each): the largest
  absolute score difference, and the Dice between the two models' masks (binary: of the
  target; face parsing: the mean over classes either model predicts). Two empty masks agree."""
  a, b = predict.labels_from_scores(reference, output), predict.labels_from_scores(other, output)
  classes = [1] if reference.shape[-1] == 1 else sorted(set(np.unique(a)) | set(np.unique(b)))
  dices = []
  for c in classes:
    in_a, in_b = a == c, b == c
    total = int(in_a.sum()) + int(in_b.sum())
    dices.append(1.0 if total == 0 else 2 * int((in_a & in_b).sum()) / total)
  return {'max_abs_diff': float(np.max(np.abs(reference.astype(np.float64) - other))),
          'dice': float(np.mean(dices)),
          'pixels_differing': int((a != b).sum()), 'pixels': int(a.size)}
