"""Export to ONNX, TFLite and SavedModel: each file, run by its own runtime, reproduces the JAX
model's masks; predict and the inference benchmark use the exported files.

The export commands run in the export environment (requirements-export.txt, TensorFlow
included), which `./run.sh test` sets up and names in UNET_FLAX_EXPORT_PYTHON; the core
environment that runs this suite has no TensorFlow.
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPORT_MODULES = ('tensorflow', 'tf2onnx', 'onnxruntime', 'ai_edge_litert')


def export_python() -> str:
  python = os.environ.get('UNET_FLAX_EXPORT_PYTHON')
  if python:
    assert os.path.exists(python), f'UNET_FLAX_EXPORT_PYTHON={python} does not exist'
    return python
  missing = [m for m in EXPORT_MODULES if importlib.util.find_spec(m) is None]
  assert not missing, (f'the export tests need {missing}: run them with ./run.sh test, which sets up '
                       f'.venv-export, or set UNET_FLAX_EXPORT_PYTHON to a python with requirements-export.txt')
  return sys.executable


def run_export_env(*args, check=True):
  env = dict(os.environ, JAX_PLATFORMS='cpu', TF_CPP_MIN_LOG_LEVEL='2')
  result = subprocess.run([export_python(), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
  if check:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  return result


@pytest.fixture(scope='module')
def photos(trained_workdir, tmp_path_factory):
  """The first test images as PNG files (what a user would point predict at), and the masks
  the workdir's own JAX model predicts for them."""
  from unet_flax import predict
  predictor = predict.Predictor(str(trained_workdir))
  images, _ = predict.test_examples(predictor.config, 4)
  folder = tmp_path_factory.mktemp('photos')
  pils = []
  for i, image in enumerate(images):
    pil = Image.fromarray((image * 255).round().astype(np.uint8))
    pil.save(folder / f'face_{i}.png')
    pils.append(pil)
  return folder, dict(zip([f'face_{i}' for i in range(len(pils))], predictor(pils)))


def test_onnx_export_reproduces_jax_and_predicts_the_same_masks(trained_workdir, photos, tmp_path):
  out = tmp_path / 'onnx'
  run_export_env('-m', 'experiments.export', f'--workdir={trained_workdir}', '--format=onnx', f'--output={out}')
  assert sorted(os.listdir(out)) == ['model.onnx', 'model_card.json']
  card = json.loads((out / 'model_card.json').read_text())
  config = json.loads((trained_workdir / 'config.json').read_text())
  assert card['input']['shape'] == [1, 64, 64, 3] and card['input']['layout'] == 'NHWC'
  assert card['input']['range'] == [0.0, 1.0] and card['input']['colour'] == 'RGB'
  assert card['output'] == {'shape': [1, 64, 64, 1], 'kind': 'logits', 'target': 'eyeglasses',
                            'classes': ['eyeglasses'], 'decision': 'logit > 0',
                            'face_check': card['output']['face_check']}
  assert 'widened 1.15 and 1.3 times' in card['output']['face_check']
  assert card['source']['config'] == config and card['source']['checkpoint_step'] == 3
  assert card['source']['synthetic_data'] is True
  assert card['source']['real_photos'].startswith('measured on real photographs with configs/quick.py')
  data = (out / 'model.onnx').read_bytes()
  assert card['bytes'] == len(data) and card['sha256'] == __import__('hashlib').sha256(data).hexdigest()
  assert card['parity']['runtime'].startswith('onnxruntime')
  assert card['parity']['dice'] >= 0.999 and card['parity']['max_abs_diff'] < 1e-3
  assert card['parity']['examples'].startswith('first 5 test examples')  # the tiny test split has 5

  # The exported model predicts the user's images as the workdir does, given the whole image as
  # the JAX masks were (the logits were compared above).
  folder, jax_masks = photos
  run_export_env('-m', 'experiments.predict', f'--model={out / "model.onnx"}', f'--input={folder}',
                 '--faces=none', f'--output={tmp_path / "pred"}')
  for stem, jax_mask in jax_masks.items():
    onnx_mask = np.asarray(Image.open(tmp_path / 'pred' / f'{stem}_mask.png')) > 127
    assert onnx_mask.shape == jax_mask.shape
    assert (onnx_mask != jax_mask.astype(bool)).mean() < 1e-3, stem

  # An existing export is never overwritten.
  before = (out / 'model.onnx').read_bytes()
  again = run_export_env('-m', 'experiments.export', f'--workdir={trained_workdir}', '--format=onnx',
                         f'--output={out}', check=False)
  assert again.returncode == 2 and 'already exists' in again.stderr and 'Traceback' not in again.stderr
  assert (out / 'model.onnx').read_bytes() == before


def test_tflite_savedmodel_int8_and_a_disagreeing_export_writes_nothing(trained_workdir, photos, tmp_path):
  script = textwrap.dedent(f'''
      import json, os
      from unet_flax import export, exported
      w, t, photos = {str(trained_workdir)!r}, {str(tmp_path)!r}, {str(photos[0])!r}
      cards = {{}}
      for name, kw in [('tflite_f16_dynamic', dict(fmt='tflite', dtype='float16', batch=0, output='probabilities')),
                       ('tflite_int8', dict(fmt='tflite', dtype='int8')),
                       ('savedmodel', dict(fmt='savedmodel', batch=2, parity_images_dir=photos))]:
        path = export.export_workdir(w, output_dir=os.path.join(t, name), log=lambda *a: None, **kw)
        model = exported.ExportedModel(path)
        cards[name] = dict(json.load(open(exported.card_path(path))), runtime_batch=model.batch)
      # A runtime that disagrees with JAX (scores negated): the export fails and leaves nothing.
      run = exported.ExportedModel.__call__
      exported.ExportedModel.__call__ = lambda self, x: -run(self, x)
      try:
        export.export_workdir(w, 'onnx', output_dir=os.path.join(t, 'bad'), log=lambda *a: None)
        cards['bad'] = 'written'
      except export.ExportError as e:
        cards['bad'] = str(e)
      cards['left'] = sorted(os.listdir(t))
      print(json.dumps(cards))
  ''')
  cards = json.loads(run_export_env('-c', script).stdout.strip().splitlines()[-1])
  f16 = cards['tflite_f16_dynamic']
  assert f16['runtime_batch'] is None and f16['input']['shape'] == [None, 64, 64, 3]
  assert f16['output']['kind'] == 'probabilities' and f16['output']['decision'] == 'probability > 0.5'
  assert f16['parity']['runtime'].startswith('LiteRT') and f16['parity']['dice'] >= 0.999
  assert f16['parity']['max_abs_diff'] < 1e-2  # probabilities, with float16 weights
  assert cards['tflite_int8']['parity']['dice_bar'] is None  # int8 parity is reported, not enforced
  assert cards['tflite_int8']['parity']['dice'] > 0.5
  assert cards['savedmodel']['runtime_batch'] == 2 and cards['savedmodel']['parity']['dice'] >= 0.999
  assert cards['savedmodel']['parity']['max_abs_diff'] < 1e-3
  assert cards['savedmodel']['parity']['runtime'].startswith('TensorFlow')
  assert cards['savedmodel']['parity']['examples'] == f'4 images of {photos[0]}'  # --parity_images
  assert 'disagrees with the JAX model' in cards['bad'] and 'nothing was written' in cards['bad']
  assert cards['left'] == ['savedmodel', 'tflite_f16_dynamic', 'tflite_int8']  # no 'bad', no staging folder


def test_benchmark_inference_times_each_runtime(trained_workdir):
  result = run_export_env('-m', 'experiments.benchmark_inference', f'--workdir={trained_workdir}',
                          '--repeats=2', '--warmup=1', '--batch=2', '--dtypes=float32,int8')
  table = [line for line in result.stdout.splitlines() if line.startswith('| ')]
  assert len(table) == 1 + 5, result.stdout  # header, JAX, ONNX and TFLite in float32 and int8
  rows = json.loads(result.stdout.strip().splitlines()[-1])['rows']
  assert [(r['runtime'].split()[0], r['dtype']) for r in rows] == [
      ('JAX', 'float32'), ('onnxruntime', 'float32'), ('onnxruntime', 'int8'), ('LiteRT', 'float32'),
      ('LiteRT', 'int8')]
  for r in rows:
    assert r['latency_ms_median'] > 0 and r['latency_ms_p90'] >= r['latency_ms_median'] and r['images_per_s'] > 0
    if r['dtype'] == 'float32':
      assert r['max_abs_diff_vs_first'] < 1e-3


def test_agreement_scores_masks_not_just_logits():
  from unet_flax import exported
  a = np.full((1, 4, 4, 1), -1.0)
  a[0, :2, :2] = 1.0  # a 4-pixel mask
  b = a.copy()
  b[0, 0, 0] = -0.5  # one pixel lost
  got = exported.agreement(a, b)
  assert got['dice'] == pytest.approx(2 * 3 / 7) and got['max_abs_diff'] == 1.5 and got['pixels_differing'] == 1
  assert exported.agreement(a, a + 1.5)['dice'] == pytest.approx(2 * 4 / (4 + 16))
  empty = np.full((1, 4, 4, 1), -2.0)
  assert exported.agreement(empty, empty * 2)['dice'] == 1.0  # two empty masks agree
  parsing = np.zeros((1, 2, 2, 3))
  parsing[0, 0, :, 1] = 5  # top row class 1, bottom row class 0
  other = parsing.copy()
  other[0, 1, 1, 2] = 5  # one background pixel becomes class 2
  # class 0: 2*1/(2+1); class 1: 1; class 2: 2*0/(0+1)
  assert exported.agreement(parsing, other)['dice'] == pytest.approx((2 / 3 + 1 + 0) / 3)


def test_predict_with_an_exported_model_needs_its_card(tmp_path, photos):
  (tmp_path / 'model.onnx').write_bytes(b'not checked before the card')
  folder, _ = photos
  result = subprocess.run([sys.executable, '-m', 'experiments.predict', f'--model={tmp_path / "model.onnx"}',
                           f'--input={folder}', f'--output={tmp_path / "out"}'], cwd=ROOT, capture_output=True,
                          text=True, env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert result.returncode == 2 and 'Traceback' not in result.stderr
  assert 'model_card.json not found' in result.stderr and not (tmp_path / 'out').exists()
  from unet_flax import export
  with pytest.raises(export.ExportError, match='--format=onnx needs a fixed --batch'):
    export.check_request('onnx', 'float32', 0, 'logits')
  with pytest.raises(export.ExportError, match='savedmodel exports float32 only'):
    export.check_request('savedmodel', 'int8', 1, 'logits')


def test_face_parsing_card_names_every_channel_and_its_colour(tmp_path):
  import types

  import ml_collections

  from configs import face_parsing
  from unet_flax import export, pictures
  from unet_flax.data import parts as parts_lib
  config = face_parsing.get_config()
  names = parts_lib.class_names(config.target, parts_lib.CELEBAMASK_HQ_PARTS)
  (tmp_path / 'model.tflite').write_bytes(b'x' * 10)
  predictor = types.SimpleNamespace(config=ml_collections.ConfigDict(config.to_dict()), num_classes=19,
                                    image_size=config.model.image_size, class_names=names, step=7)
  model = types.SimpleNamespace(path=str(tmp_path / 'model.tflite'), input_name='serving_default_images:0')
  card = export.model_card(predictor, str(tmp_path), 'tflite', 'int8', 1, 'probabilities', model, {})
  assert card['output']['classes'] == list(names) and len(names) == 19 and names[0] == 'background'
  assert card['output']['palette'] == pictures.PALETTE[:19].tolist()
  assert card['output']['decision'].startswith('argmax') and card['source']['test_metrics'] is None
  assert card['input']['shape'] == [1, config.model.image_size, config.model.image_size, 3]
  assert card['bytes'] == 10 and 'int8 weights' in card['dtype_means']
