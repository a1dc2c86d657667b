"""Model, losses, metrics, the pmapped step, checkpoints/resume, eval mode and the NaN guard."""

import functools
import importlib
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from tests.helpers import config_with as _test_cfg
from tests.helpers import difference_per_update, garble
from unet_flax import augment, checkpoints, losses, steps, train
from unet_flax import metrics as metrics_lib
from unet_flax import model as model_lib
from unet_flax import workdir as workdir_lib
from unet_flax.data import parts as parts_lib
from unet_flax.data import pipeline

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_default_unet_has_seed_000_parameter_count():
  shapes = jax.eval_shape(lambda: model_lib.UNet().init(jax.random.key(0), jnp.zeros((1, 256, 256, 3))))
  assert sum(x.size for x in jax.tree.leaves(shapes['params'])) == 31_031_745


@pytest.mark.parametrize('norm,upsample,dtype',
                         [('batch', 'resize', jnp.bfloat16), ('group', 'transpose', jnp.float32)])
def test_unet_pads_odd_sizes_and_returns_float32_logits(norm, upsample, dtype):
  model = model_lib.UNet(num_classes=19, base_features=4, norm=norm, upsample=upsample, dtype=dtype)
  x = jnp.ones((2, 218, 178, 3))
  variables = model.init(jax.random.key(0), x)
  out = model.apply(variables, x)
  assert out.shape == (2, 218, 178, 19) and out.dtype == jnp.float32
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables['params']))


def test_unet_gradient_is_finite_with_group_norm_under_jit():
  """Under jit, XLA:CPU recomputed group norm's output for max pooling's gradient, JAX's rule for
  max found no input equal to the output, and the encoder's gradient was 0/0 (training with
  norm=group stopped at step 1). The pool now finds the tied maxima in its forward pass."""
  model = model_lib.UNet(num_classes=1, base_features=8, norm='group', axis_name=None)
  x = jnp.asarray(np.random.default_rng(0).random((2, 160, 160, 3)), jnp.float32)
  params = model.init(jax.random.key(0), x)['params']
  grads = jax.jit(jax.grad(lambda p: jnp.mean(model.apply({'params': p}, x, train=True))))(params)
  assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads))


@pytest.mark.parametrize('ties', [False, True])
def test_max_pool_gradient_is_jax_rule_for_max(ties):
  """Bitwise JAX's own rule, tied maxima sharing the gradient equally: flat image regions tie,
  and giving a tie's gradient to one input changed ./run.sh's trained model (test Dice 0.7986 ->
  0.7741)."""
  x = np.random.default_rng(1).normal(size=(2, 4, 6, 3))
  x = jnp.asarray(np.round(x) if ties else x, jnp.float32)  # rounded: most windows tie
  assert jnp.array_equal(model_lib.max_pool_2x2(x), x.reshape(2, 2, 2, 3, 2, 3).max(axis=(2, 4)))
  g = jax.grad(lambda v: jnp.sum(model_lib.max_pool_2x2(v) * jnp.arange(1.0, 19.0).reshape(1, 2, 3, 3)))(x)
  reference = jax.grad(lambda v: jnp.sum(v.reshape(2, 2, 2, 3, 2, 3).max(axis=(2, 4))
                                         * jnp.arange(1.0, 19.0).reshape(1, 2, 3, 3)))(x)
  np.testing.assert_array_equal(g, reference)


def _np_bce(x, y, w=1.0):
  p = 1 / (1 + np.exp(-x.astype(np.float64)))
  return np.mean(-(w * y * np.log(p) + (1 - y) * np.log(1 - p)))


def test_losses_match_numpy_references():
  rng = np.random.default_rng(0)
  logits = rng.normal(0, 3, (3, 5, 5, 1)).astype(np.float32)
  labels = rng.integers(0, 2, (3, 5, 5))
  ones = jnp.ones(3)
  assert losses.bce(logits, labels, ones) == pytest.approx(_np_bce(logits[..., 0], labels), rel=1e-5)
  assert losses.bce(logits, labels, ones, pos_weight=4.0) == pytest.approx(
      _np_bce(logits[..., 0], labels, 4.0), rel=1e-5)
  p = 1 / (1 + np.exp(-logits[..., 0].astype(np.float64)))
  dice = (2 * np.sum(p * labels) + 1) / (np.sum(p) + np.sum(labels) + 1)
  assert losses.soft_dice(logits, labels, ones) == pytest.approx(1 - dice, rel=1e-5)
  multi = rng.normal(0, 2, (3, 5, 5, 4)).astype(np.float32)
  cls = rng.integers(0, 4, (3, 5, 5))
  log_p = multi - np.log(np.exp(multi.astype(np.float64)).sum(-1, keepdims=True))
  ce = -np.mean(np.take_along_axis(log_p, cls[..., None], -1))
  assert losses.softmax_cross_entropy(multi, cls, ones) == pytest.approx(ce, rel=1e-5)
  # Padding (weight 0) does not count.
  weights = jnp.array([1.0, 1.0, 0.0])
  assert losses.bce(logits, labels, weights) == pytest.approx(_np_bce(logits[:2, ..., 0], labels[:2]), rel=1e-5)


def test_bce_from_logits_is_finite_for_extreme_logits():
  logits = jnp.array([[[[1e4]], [[-1e4]]]]).reshape(1, 2, 1, 1)
  labels = jnp.array([[[0], [1]]])
  value = losses.bce(logits, labels, jnp.ones(1))
  # Both pixels are confidently wrong by 1e4: each costs 1e4 (no log(0) = inf).
  assert np.isfinite(value) and value == pytest.approx(1e4, rel=1e-6)


def test_focal_golden_case():
  # One pixel, logit 0 (p = 0.5), label 1: alpha * (1 - 0.5)^2 * log 2.
  value = losses.focal(jnp.zeros((1, 1, 1, 1)), jnp.ones((1, 1, 1)), jnp.ones(1), gamma=2.0, alpha=0.25)
  assert value == pytest.approx(0.25 * 0.25 * np.log(2), rel=1e-6)


def _metrics(logits, labels, valid):
  m = metrics_lib.SegmentationMetrics.single_from_model_output(
      **metrics_lib.model_outputs(jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(valid),
                                  jnp.zeros(len(valid))))
  return metrics_lib.to_host(m)


def test_binary_dice_is_one_when_split_has_no_target_and_no_false_positive():
  got = metrics_lib.summarize(_metrics(np.full((2, 4, 4, 1), -5.0, np.float32), np.zeros((2, 4, 4), np.int32),
                                       np.array([True, True])), ('eyeglasses',))
  assert got['dice'] == 1.0 and got['iou'] == 1.0 and got['accuracy'] == 1.0


def test_binary_metrics_are_dataset_level_counts_and_ignore_padding():
  rng = np.random.default_rng(1)
  logits = rng.normal(0, 1, (6, 8, 8, 1)).astype(np.float32)
  labels = (rng.random((6, 8, 8)) < 0.3).astype(np.int32)
  valid = np.array([True] * 5 + [False])
  logits[5] = 50.0  # a padded example that would ruin precision if counted
  merged = _metrics(logits[:2], labels[:2], valid[:2]).merge(_metrics(logits[2:], labels[2:], valid[2:]))
  got = metrics_lib.summarize(merged, ('eyeglasses',))
  pred, y = logits[:5, ..., 0] > 0, labels[:5] == 1
  tp, fp, fn = np.sum(pred & y), np.sum(pred & ~y), np.sum(~pred & y)
  assert got['dice'] == pytest.approx(2 * tp / (2 * tp + fp + fn))
  assert got['iou'] == pytest.approx(tp / (tp + fp + fn))
  assert got['precision'] == pytest.approx(tp / (tp + fp))
  assert got['recall'] == pytest.approx(tp / (tp + fn))
  assert got['accuracy'] == pytest.approx(np.mean(pred == y))
  assert got['bce'] == pytest.approx(_np_bce(logits[:5, ..., 0], labels[:5]), rel=1e-5)
  # Not a mean of per-batch Dice:
  first = metrics_lib.summarize(_metrics(logits[:2], labels[:2], valid[:2]), ('eyeglasses',))['dice']
  second = metrics_lib.summarize(_metrics(logits[2:], labels[2:], valid[2:]), ('eyeglasses',))['dice']
  assert got['dice'] != pytest.approx((first + second) / 2)


def test_face_parsing_metrics_per_class_and_mean_f1():
  names = parts_lib.class_names('face_parsing', parts_lib.CELEBAMASK_HQ_PARTS)
  labels = np.zeros((1, 2, 2), np.int32)
  labels[0, 0, 0], labels[0, 0, 1], labels[0, 1, 0] = 1, 2, 2
  logits = np.zeros((1, 2, 2, 19), np.float32)
  logits[0, 0, 0, 1] = logits[0, 0, 1, 2] = logits[0, 1, 0, 1] = 5  # one class-2 pixel called 1
  got = metrics_lib.summarize(_metrics(logits, labels, np.array([True])), names)
  assert got['f1/skin'] == pytest.approx(2 / 3) and got['f1/nose'] == pytest.approx(2 / 3)
  assert got['iou/nose'] == pytest.approx(0.5) and got['f1/background'] == 1.0
  assert got['accuracy'] == pytest.approx(0.75)
  assert got['f1/hat'] is None  # neither labelled nor predicted: not a perfect score
  assert got['mean_f1'] == pytest.approx(2 / 3)  # over the parts present: skin and nose


def test_training_does_not_depend_on_the_device_count(synthetic_data_dir, synthetic_builder):
  """4 devices and 1 device, with a batch-summed loss (BCE + Dice), batch norm, dropout and
  augmentation: the same losses, metrics and parameters after a few steps. SGD, because Adam's
  first steps move every parameter by about lr * sign(gradient), which turns float rounding in
  near-zero gradients into lr-sized differences on any hardware. The 4-level U-Net: its deepest
  batch norm sees 4x4 maps, where per-device statistics differ most from the global ones."""
  assert jax.local_device_count() == 4
  cfg = _test_cfg(synthetic_data_dir, **{'model.depth': 4, 'loss.name': 'bce_dice', 'model.norm': 'batch',
                                         'model.dropout': 0.2,
                                         'augment.enabled': True, 'optimizer.name': 'sgd',
                                         'optimizer.learning_rate': 0.1})
  exp = train.Experiment(cfg)
  rng = np.random.default_rng(0)
  batches = [{'image': rng.random((8, 64, 64, 3), np.float32),
              'label': (rng.random((8, 64, 64)) < 0.2).astype(np.uint8)} for _ in range(3)]
  step = functools.partial(steps.train_step, loss_fn=exp.loss_fn, config=cfg,
                           mirror_label_map=jnp.asarray(exp.target.mirror_label_map))

  def run(devices):
    n = len(devices)
    p = jax.pmap(step, axis_name=steps.AXIS, in_axes=(None, 0), out_axes=(None, None, None), devices=devices)
    state, losses_seen = exp.initial_state(), []
    for batch in batches:
      state, m, health = p(state, jax.tree.map(lambda x: x.reshape((n, 8 // n) + x.shape[1:]), batch))
      losses_seen.append(float(health['loss']))
    return state, metrics_lib.summarize(metrics_lib.to_host(m), exp.class_names), losses_seen

  four, four_m, four_losses = run(jax.devices()[:4])
  one, one_m, one_losses = run(jax.devices()[:1])
  np.testing.assert_allclose(four_losses, one_losses, rtol=1e-5)
  assert four_losses[0] != four_losses[1]  # the steps did train
  # Parameters and batch statistics moved by the same update, to float rounding. Measured against
  # the update (docs/benchmarks.md, "Multi-host and device-count bounds"), float32 rounding gave
  # 2e-6 here, but 3e-4 to 2.6e-2 for the parameters and up to 1.4e-4 for the batch statistics
  # when XLA's flags, the host's device count or the batches changed the rounding; in float64,
  # 7e-15. A real difference (one key for every device, per-device batch norm) gave 0.54 and
  # 0.035 or more. The bounds sit between, by the geometric mean.
  start = exp.initial_state()
  params_apart = difference_per_update(four.params, one.params, start.params)
  batch_stats_apart = difference_per_update(four.batch_stats, one.batch_stats, start.batch_stats)
  assert params_apart < 1e-1 and batch_stats_apart < 2e-3, (params_apart, batch_stats_apart)
  assert four_m['loss'] == pytest.approx(one_m['loss'], rel=1e-5)
  assert four_m['dice'] == pytest.approx(one_m['dice'], rel=1e-5)


def test_auxiliary_target_trains_its_own_channel_and_stays_out_of_predictions(synthetic_data_dir, synthetic_builder):
  """config.auxiliary_target: the step's loss is the target's loss on the first channel plus
  auxiliary_weight x the same loss of the auxiliary parts on the second, over the global batch on
  4 devices; prediction returns the target's channel alone."""
  cfg = _test_cfg(synthetic_data_dir, auxiliary_target='eyes', **{
      'augment.enabled': False, 'loss.name': 'bce_dice', 'loss.auxiliary_weight': 0.5})
  exp = train.Experiment(cfg)
  state = exp.initial_state()
  batch = next(pipeline.train_iterator(exp.train_split, exp.training_target, global_batch_size=8, seed=0))
  images, labels = augment.resize(batch['image'].reshape((8,) + batch['image'].shape[2:]),
                                  batch['label'].reshape((8,) + batch['label'].shape[2:]), cfg.model.image_size)
  glasses, eyes = parts_lib.split_auxiliary(labels)
  assert eyes.any() and glasses.any() and not np.array_equal(eyes, glasses)
  logits, auxiliary = state.apply_fn({'params': state.params}, images, with_auxiliary=True)
  weights = jnp.ones(8)
  expected = exp.loss_fn(logits, glasses, weights) + 0.5 * exp.loss_fn(auxiliary, eyes, weights)
  # Jitted, one output channel, against eager with two: XLA may round differently in the last bit.
  np.testing.assert_allclose(steps.predict_step(state, images, image_size=cfg.model.image_size), logits,
                             rtol=1e-5, atol=1e-7)
  assert logits.shape == (8, 64, 64, 1)
  p_train, _ = steps.pmap_steps(exp.loss_fn, cfg, exp.training_target.mirror_label_map)
  _, _, health = p_train(state, batch)  # donates `state`
  assert float(health['loss']) == pytest.approx(float(expected), rel=1e-5)
  assert float(exp.loss_fn(logits, glasses, weights)) < 0.9 * float(expected)  # the eyes' term counts


def test_global_batch_loss_gradient_under_pmap_equals_whole_batch_gradient():
  """`batch_sum`: each device's gradient, averaged over devices, is the gradient of the Dice of
  the whole batch (not the mean of the devices' Dice)."""
  rng = np.random.default_rng(2)
  logits = jnp.asarray(rng.normal(0, 2, (8, 6, 6, 1)), jnp.float32)
  labels = jnp.asarray(rng.random((8, 6, 6)) < 0.3, jnp.int32)
  ones = jnp.ones(8)
  whole = jax.grad(lambda l: losses.soft_dice(l, labels, ones))(logits)
  device_loss = lambda l, y: losses.soft_dice(l, y, jnp.ones(2), axis_name='d')
  split = logits.reshape(4, 2, 6, 6, 1), labels.reshape(4, 2, 6, 6)
  values = jax.pmap(device_loss, axis_name='d')(*split)
  np.testing.assert_allclose(values, losses.soft_dice(logits, labels, ones), rtol=1e-6)
  per_device = jax.pmap(jax.grad(device_loss), axis_name='d')(*split)
  # The train step averages parameter gradients over the 4 devices, hence the factor 4 here.
  np.testing.assert_allclose(np.asarray(per_device).reshape(whole.shape), 4 * whole, rtol=1e-5, atol=1e-8)


def test_balanced_cross_entropy_weighs_rare_classes_over_the_global_batch():
  """A pixel of a rare class pulls harder than under plain cross entropy, by the square root of
  how much rarer it is; the shares are counted over the whole batch, on any number of devices."""
  labels = np.zeros((8, 6, 6), np.int32)
  labels[:, :3] = 1  # half the pixels are class 1
  labels[0, 5, 5] = 2  # one pixel of class 2
  labels, ones = jnp.asarray(labels), jnp.ones(8)
  logits = jnp.zeros((8, 6, 6, 3), jnp.float32)
  plain = jax.grad(lambda l: losses.softmax_cross_entropy(l, labels, ones))(logits)
  balanced = jax.grad(lambda l: losses.balanced_cross_entropy(l, labels, ones))(logits)
  ratio = lambda g: float(jnp.abs(g[0, 5, 5]).sum() / jnp.abs(g[0, 0, 0]).sum())
  share = np.array([143, 144, 1]) / 288
  assert ratio(plain) == pytest.approx(1.0)
  assert ratio(balanced) == pytest.approx(np.sqrt((share[1] + 1e-4) / (share[2] + 1e-4)), rel=1e-4)
  device_loss = lambda l, y: losses.balanced_cross_entropy(l, y, jnp.ones(2), axis_name='d')
  split = logits.reshape(4, 2, 6, 6, 3), labels.reshape(4, 2, 6, 6)
  per_device = jax.pmap(jax.grad(device_loss), axis_name='d')(*split)
  np.testing.assert_allclose(np.asarray(per_device).reshape(balanced.shape), 4 * balanced, rtol=1e-5, atol=1e-8)


def _params(workdir, cfg):
  state, _ = checkpoints.Manager(str(workdir), cfg, read_only=True).restore(
      train.Experiment(cfg).initial_state(), 'latest')
  return state


def resume_cfg(data_dir):
  """Everything that could break an exact resume: batch norm, dropout, augmentation, a warmup-cosine
  schedule, a train-metrics window open across the checkpoint (log every 2, checkpoint every 3)."""
  return _test_cfg(data_dir, **{'model.norm': 'batch', 'model.dropout': 0.1, 'optimizer.schedule': 'warmup_cosine',
                                'optimizer.warmup_steps': 2, 'loss.name': 'bce_dice'})


_KILLED_RUN = """
import os, signal, sys, time
sys.path.insert(0, {repo!r})
from tests.helpers import pmap_steps_with_hook
from tests.test_train import resume_cfg
from unet_flax import train

def hook(n):
  if n == 2:
    time.sleep(1)  # so the first start's wall time is long enough to be told apart
  if n == 5:  # once the step-3 checkpoint has committed (asynchronously), the power goes
    committed = os.path.join({workdir!r}, 'checkpoints', '3')  # Orbax renames it into place
    deadline = time.monotonic() + 120  # a loaded machine takes seconds; a hang guard only
    while not os.path.isdir(committed) and time.monotonic() < deadline:
      time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGKILL)

train.pmap_steps = pmap_steps_with_hook(hook)
train.train_and_evaluate(resume_cfg({data_dir!r}), {workdir!r})
"""


def test_resume_after_sigkill_equals_uninterrupted_bitwise(tmp_path, synthetic_data_dir, synthetic_builder):
  cfg = resume_cfg(synthetic_data_dir)
  train.train_and_evaluate(cfg, str(tmp_path / 'full'))
  killed = subprocess.run([sys.executable, '-c', _KILLED_RUN.format(
      repo=REPO, data_dir=str(synthetic_data_dir), workdir=str(tmp_path / 'resumed'))],
      capture_output=True, text=True, timeout=300)
  assert killed.returncode == -9, killed.stderr[-3000:]
  assert sorted(n for n in os.listdir(tmp_path / 'resumed' / 'checkpoints') if n.isdigit()) == ['3']
  train.train_and_evaluate(cfg, str(tmp_path / 'resumed'))  # resumes from step 3
  a, b = _params(tmp_path / 'full', cfg), _params(tmp_path / 'resumed', cfg)
  assert a.step == b.step == 6
  for part in ('params', 'opt_state', 'batch_stats'):
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(getattr(a, part)), jax.device_get(getattr(b, part)))
  # Every logged number too: the step-4 train row covers steps 3 and 4 in both runs, since the
  # open metrics window was checkpointed at step 3. Rows the killed run wrote after its
  # checkpoint are superseded by the resumed run's.
  rows = lambda w: [{k: v for k, v in r.items() if k != 'wall_seconds'}
                    for r in workdir_lib.Workdir(tmp_path / w).read_metrics()]
  assert rows('full') == rows('resumed')
  assert [r['step'] for r in rows('full') if r['split'] == 'train'] == [2, 4, 6]
  provenance = json.load(open(tmp_path / 'resumed' / 'provenance.json'))
  assert len(provenance) == 2 and provenance[0]['dataset']['config'] == 'synthetic_seed7_24_6_5'
  # Wall time counts both starts: more than the resumed start alone took.
  with checkpoints.Manager(str(tmp_path / 'resumed'), cfg, read_only=True) as manager:
    before_kill = manager.restore(train.Experiment(cfg).initial_state(), '3', with_progress=True)[2]
  summary = [r for r in workdir_lib.Workdir(tmp_path / 'resumed').read_metrics() if r['split'] == 'summary'][-1]
  assert before_kill['wall_seconds'] >= 1 and summary['wall_seconds'] > before_kill['wall_seconds']


def test_nan_guard_stops_and_keeps_last_good_checkpoint(tmp_path, synthetic_data_dir, synthetic_builder,
                                                        monkeypatch):
  cfg = _test_cfg(synthetic_data_dir)
  cfg.num_train_steps = 3
  train.train_and_evaluate(cfg, str(tmp_path))
  cfg.num_train_steps = 6
  real_loss = losses.make_loss(cfg.loss)
  monkeypatch.setattr(losses, 'make_loss', lambda _: lambda *a, **k: real_loss(*a, **k) * jnp.nan)
  with pytest.raises(train.NonFiniteError, match='last good checkpoint is step 3'):
    train.train_and_evaluate(cfg, str(tmp_path))
  state = _params(tmp_path, cfg)
  assert state.step == 3
  assert all(np.isfinite(np.asarray(p)).all() for p in jax.tree.leaves(state.params))
  assert not (tmp_path / 'train.lock').exists()  # released on the error path too


def test_a_non_finite_step_is_rolled_back_whole(synthetic_data_dir, synthetic_builder):
  """Params, optimiser moments, batch statistics and the step count stay as they were."""
  cfg = _test_cfg(synthetic_data_dir, **{'model.norm': 'batch', 'optimizer.learning_rate': 1e-2})
  exp = train.Experiment(cfg)
  p_train, _ = steps.pmap_steps(exp.loss_fn, cfg, exp.target.mirror_label_map)
  batch = next(pipeline.train_iterator(exp.train_split, exp.target, global_batch_size=8, seed=0))
  state, _, health = p_train(exp.initial_state(), batch)  # a good step: moments are non-zero
  assert bool(health['finite'])
  before = jax.device_get(state)
  poisoned = dict(batch, image=np.full(batch['image'].shape, np.nan, np.float32))
  after, _, health = p_train(state, poisoned)
  assert not bool(health['finite'])
  after = jax.device_get(after)
  assert int(after.step) == int(before.step) == 1
  for part in ('params', 'opt_state', 'batch_stats'):
    jax.tree.map(np.testing.assert_array_equal, getattr(after, part), getattr(before, part))


def _run_main(*args):
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=2')
  return subprocess.run([sys.executable, '-m', 'experiments.main', *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=300)


def test_main_trains_then_eval_mode_writes_metrics(tmp_path, synthetic_data_dir, synthetic_builder):
  common = ['--config=configs/test.py', f'--config.dataset.data_dir={synthetic_data_dir}',
            f'--workdir={tmp_path}']
  done = _run_main(*common, '--config.num_train_steps=3')
  assert done.returncode == 0, done.stderr[-3000:]
  assert (tmp_path / 'training_history.png').exists() and (tmp_path / 'sample_predictions.png').exists()
  done = _run_main(*common, '--mode=eval', '--checkpoint=latest')
  assert done.returncode == 0, done.stderr[-3000:]
  result = json.load(open(tmp_path / 'eval_test.json'))
  assert result['step'] == 3 and result['split'] == 'test' and result['target'] == 'eyeglasses'
  assert 0 <= result['dice'] <= 1 and np.isfinite(result['bce'])
  # The model runs at 64x64 and the labels are stored at 256x256: both are reported, the
  # label resolution as the headline.
  assert 0 <= result['model_size/dice'] <= 1 and result['model_size/loss'] == result['loss']


def test_eval_mode_without_checkpoint_is_a_clear_error(tmp_path, synthetic_data_dir, synthetic_builder):
  done = _run_main('--config=configs/test.py', f'--config.dataset.data_dir={synthetic_data_dir}',
                   f'--workdir={tmp_path}', '--mode=eval')
  assert done.returncode != 0
  assert 'No checkpoints' in done.stderr and 'Traceback' not in done.stderr


def test_end_to_end_tiny_run_learns(tmp_path, synthetic_data_dir, synthetic_builder):
  # Skin is a big target, so a few CPU steps show learning; chance is computed below.
  cfg = _test_cfg(synthetic_data_dir, target='skin', num_train_steps=120, eval_every_steps=120,
                  checkpoint_every_steps=120, log_every_steps=40, **{
                      'model.base_features': 8, 'model.norm': 'batch', 'optimizer.learning_rate': 3e-3,
                      'loss.name': 'bce_dice'})
  result = train.train_and_evaluate(cfg, str(tmp_path))
  exp = train.Experiment(cfg)
  validation = exp.split('validation')
  _, labels = validation.examples(exp.target, range(len(validation)))
  chance = 2 * labels.mean() / (1 + labels.mean())  # Dice of calling every pixel skin
  assert result['dice'] > chance + 0.15, (result, chance)


def test_eval_scores_masks_at_the_label_resolution(synthetic_data_dir, synthetic_builder):
  """Published figures score masks at the stored label size: the logits are upsampled to it."""
  cfg = _test_cfg(synthetic_data_dir)  # model at 64x64, labels stored at 256x256
  exp = train.Experiment(cfg)
  _, p_eval = steps.pmap_steps(exp.loss_fn, cfg, exp.target.mirror_label_map)
  validation = exp.split('validation')
  totals = train.evaluate(p_eval, exp.initial_state(), validation, exp.target, cfg)
  assert float(totals['label_size'].counts.pixels) == len(validation) * 256 * 256
  assert float(totals['model_size'].counts.pixels) == len(validation) * 64 * 64
  summary = train.summarize_eval(totals, exp.class_names)
  assert {'dice', 'model_size/dice', 'loss'} <= set(summary)


# --- pix2pix: the U-Net as generator against a PatchGAN, in the same loop -------------------------

def _gan_cfg(data_dir, **overrides):
  cfg = _test_cfg(data_dir, **overrides)
  pix2pix = importlib.import_module('configs.pix2pix_lips_eyes').get_config()
  cfg.model.kind, cfg.optimizer, cfg.loss = 'pix2pix', pix2pix.optimizer, pix2pix.loss
  cfg.target, cfg.gan.disc_features = 'eyes_lips', 8
  return cfg


def test_patch_discriminator_sees_70x70_patches():
  disc = model_lib.PatchDiscriminator()
  image, mask = jnp.zeros((2, 256, 256, 3)), jnp.zeros((2, 256, 256, 1))
  variables = jax.eval_shape(disc.init, jax.random.key(0), image, mask)
  assert jax.eval_shape(disc.apply, variables, image, mask).shape == (2, 30, 30)
  assert sum(x.size for x in jax.tree.leaves(variables)) == 2_767_553  # pix2pix's discriminator
  # Receptive field: one output patch logit depends on exactly a 70x70 input window (without
  # instance normalisation, whose statistics span the whole image).
  disc = model_lib.PatchDiscriminator(normalize=False)
  params = disc.init(jax.random.key(0), jnp.zeros((1, 96, 96, 3)), jnp.zeros((1, 96, 96, 1)))
  grad = jax.grad(lambda im: disc.apply(params, im, jnp.zeros((1, 96, 96, 1)))[0, 5, 5])(jnp.ones((1, 96, 96, 3)))
  rows, cols = np.nonzero(np.abs(np.asarray(grad[0]).sum(-1)) > 0)
  assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


def test_gan_step_updates_both_networks_and_losses_have_the_right_signs(synthetic_data_dir, synthetic_builder):
  cfg = _gan_cfg(synthetic_data_dir)
  exp = train.Experiment(cfg)
  state = exp.initial_state()
  assert isinstance(state, steps.GanState)
  train_step, p_eval = steps.pmap_steps(exp.loss_fn, cfg, exp.target.mirror_label_map)
  p_train = lambda s, b: train_step(jax.tree.map(jnp.copy, s), b)  # the step donates its input
  batch = next(pipeline.train_iterator(exp.train_split, exp.target, global_batch_size=8, seed=0))
  new, _, health = p_train(state, batch)
  assert bool(health['finite']) and int(new.step) == 1
  for net in ('generator', 'discriminator'):
    before, after = jax.tree.leaves(getattr(state, net).params), jax.tree.leaves(getattr(new, net).params)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after)), net
  assert float(health['loss']) == pytest.approx(float(health['g_adversarial']) + 100 * float(health['g_l1']), rel=1e-5)
  assert 0 < float(health['g_l1']) < 1 and float(health['d_loss']) > 0
  # The discriminator's loss falls when it alone trains against a fixed generator.
  frozen_generator = state.generator
  d_losses = []
  for _ in range(6):
    state, _, health = p_train(state, batch)
    d_losses.append(float(health['d_loss']))
    state = state.replace(generator=frozen_generator)
  assert d_losses[-1] < d_losses[0] - 0.05, d_losses
  # Evaluation and prediction use the generator: the same metrics as the U-Net.
  totals = train.evaluate(p_eval, state, exp.split('validation'), exp.target, cfg)
  assert {'dice', 'bce', 'accuracy', 'iou'} <= set(train.summarize_eval(totals, exp.class_names))


def test_gan_checkpoint_holds_both_networks_and_resumes_exactly(tmp_path, synthetic_data_dir, synthetic_builder):
  cfg = _gan_cfg(synthetic_data_dir, num_train_steps=2, checkpoint_every_steps=1, eval_every_steps=2)
  train.train_and_evaluate(cfg, str(tmp_path / 'full'))
  cfg.num_train_steps = 1
  train.train_and_evaluate(cfg, str(tmp_path / 'resumed'))
  cfg.num_train_steps = 2
  train.train_and_evaluate(cfg, str(tmp_path / 'resumed'))
  a, b = _params(tmp_path / 'full', cfg), _params(tmp_path / 'resumed', cfg)
  assert isinstance(a, steps.GanState) and int(a.step) == int(b.step) == 2
  for x, y in zip(jax.tree.leaves(jax.device_get(a)), jax.tree.leaves(jax.device_get(b)), strict=True):
    np.testing.assert_array_equal(x, y)
  # Prediction restores the workdir and predicts with the generator.
  from unet_flax.predict import Predictor
  predictor = Predictor(str(tmp_path / 'full'), 'latest')
  masks = predictor([Image.fromarray(np.zeros((50, 70, 3), np.uint8))])
  assert masks[0].shape == (50, 70) and set(np.unique(masks[0])) <= {0, 1}


# --- damaged checkpoints: fall back to the newest that restores ---------------------------------

@pytest.fixture(scope='module')
def six_steps(tmp_path_factory, synthetic_data_dir, synthetic_builder):
  """An uninterrupted run of `resume_cfg` to step 6, with checkpoints at steps 3 and 6."""
  workdir = tmp_path_factory.mktemp('six_steps')
  train.train_and_evaluate(resume_cfg(synthetic_data_dir), str(workdir))
  assert sorted(n for n in os.listdir(workdir / 'checkpoints')) == ['3', '6']
  return workdir


def test_resume_past_a_damaged_latest_checkpoint_equals_the_uninterrupted_run(
    six_steps, tmp_path, synthetic_data_dir, caplog):
  """Every file of step 6 garbled: the rerun warns once, moves step 6 aside, resumes from step 3
  and ends bitwise where the uninterrupted run from step 3 did (`six_steps` went through 3)."""
  import shutil
  workdir = tmp_path / 'run'
  shutil.copytree(six_steps, workdir)
  garble(workdir / 'checkpoints' / '6')
  damaged = {p: p.read_bytes() for p in (workdir / 'checkpoints' / '6').rglob('*') if p.is_file()}
  cfg = resume_cfg(synthetic_data_dir)
  train.train_and_evaluate(cfg, str(workdir))
  warnings = [r.getMessage() for r in caplog.records if 'Damaged checkpoint' in r.getMessage()]
  assert len(warnings) == 1 and 'step 6: metrics/metrics' in warnings[0], warnings
  assert 'Using step 3' in warnings[0]
  aside = [n for n in os.listdir(workdir / 'checkpoints')
           if n.startswith(checkpoints.DAMAGED_PREFIX)]
  assert len(aside) == 1 and aside[0].startswith('damaged-6-')
  assert f'moved to {workdir / "checkpoints" / aside[0]}' in warnings[0]
  kept = workdir / 'checkpoints' / aside[0]
  assert all((kept / p.relative_to(workdir / 'checkpoints' / '6')).read_bytes() == data
             for p, data in damaged.items())  # kept for inspection as it was
  a, b = _params(six_steps, cfg), _params(workdir, cfg)
  assert int(a.step) == int(b.step) == 6
  for part in ('params', 'opt_state', 'batch_stats'):
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(getattr(a, part)),
                 jax.device_get(getattr(b, part)))
  rows = lambda w: [{k: v for k, v in r.items() if k != 'wall_seconds'}
                    for r in workdir_lib.Workdir(w).read_metrics()]
  assert rows(six_steps) == rows(workdir)


# Orbax leaves TensorStore reads of the damaged checkpoint unfinished when the first one fails;
# ending later, they find their event loop closed. The commands drop those reports
# (checkpoints._ReportedDamage), but pytest puts its own unraisable-exception hook in place.
@pytest.mark.filterwarnings('ignore:coroutine .* was never awaited:RuntimeWarning')
@pytest.mark.filterwarnings('ignore:Exception ignored in:pytest.PytestUnraisableExceptionWarning')
def test_eval_and_prediction_fall_back_from_a_damaged_best_checkpoint(
    six_steps, tmp_path, synthetic_data_dir, caplog):
  import shutil

  from unet_flax.predict import Predictor
  workdir = tmp_path / 'run'
  shutil.copytree(six_steps, workdir)
  cfg = resume_cfg(synthetic_data_dir)
  with checkpoints.Manager(str(workdir), cfg, read_only=True) as manager:
    best = manager.resolve('best')
  other = ({3, 6} - {best}).pop()
  garble(workdir / 'checkpoints' / str(best), only='manifest.ocdbt')
  result = train.evaluate_checkpoint(cfg, str(workdir), 'best', 'validation')
  assert result['step'] == other
  warnings = [r.getMessage() for r in caplog.records if 'Damaged checkpoint' in r.getMessage()]
  assert len(warnings) == 1 and f'step {best}: state/manifest.ocdbt' in warnings[0], warnings
  assert 'left where it is' in warnings[0] and (workdir / 'checkpoints' / str(best)).is_dir()
  assert Predictor(str(workdir), 'best').step == other  # predict and export restore through it
  with pytest.raises(checkpoints.CheckpointDamagedError) as e:
    Predictor(str(workdir), str(best))
  assert f'step {best} in ' in str(e.value) and f'Steps that restore: [{other}]' in str(e.value)
  assert 'state/manifest.ocdbt' in str(e.value)
