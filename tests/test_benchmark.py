"""The train-step benchmark runs without TensorFlow, Grain or TFDS; scaling runs write their table."""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Run the benchmark as an accelerator host with only JAX would: these imports fail.
NO_DATA_STACK = ("import runpy, sys\n"
                 "for name in ('tensorflow', 'grain', 'tensorflow_datasets', 'array_record'):\n"
                 "  sys.modules[name] = None\n"
                 "sys.argv = ['benchmark'] + sys.argv[1:]\n"
                 "runpy.run_module('experiments.benchmark', run_name='__main__')\n")


def _run(args, devices=2):
  env = dict(os.environ, XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}')
  return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_benchmark_reports_speed_and_flops_without_tensorflow_grain_or_tfds():
  done = _run([sys.executable, '-c', NO_DATA_STACK, '--config=configs/test.py', '--steps=2', '--rounds=1',
               '--warmup=1', '--peer=off', '--peak_tflops=1.0', '--config.model.norm=batch'])
  assert done.returncode == 0, done.stderr[-3000:]
  result = json.loads(done.stdout.strip().splitlines()[-1])
  assert result['devices'] == 2 and result['batch_size'] == 8 and result['device'] == 'cpu'
  assert result['images_per_s'] > 0 and result['step_ms'] > 0
  # XLA's count for the tiny U-Net: forward and backward are several GFLOP per 8 images at 64x64.
  assert 1e8 < result['flops_per_step'] < 1e11
  assert abs(result['tflops'] - result['flops_per_step'] / (result['step_ms'] / 1e3) / 1e12) < 1e-9
  assert result['mfu'] == result['tflops'] / 2.0  # 2 devices at the given 1 TFLOP/s each


def test_scaling_runs_write_a_table_and_plot(tmp_path):
  done = _run([sys.executable, '-m', 'experiments.scaling', '--config=configs/test.py', '--devices=1,2',
               '--mode=strong', '--steps=2', '--rounds=1', f'--output={tmp_path}'])
  assert done.returncode == 0, done.stderr[-3000:]
  rows = json.load(open(tmp_path / 'results.json'))
  assert [(r['devices'], r['batch_size']) for r in rows] == [(1, 8), (2, 8)]
  table = (tmp_path / 'scaling.md').read_text()
  assert '| 1 | 8 |' in table and '| 2 | 8 |' in table and '100%' in table
  assert (tmp_path / 'scaling.png').stat().st_size > 10_000


def test_profile_step_prints_a_per_op_table():
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1 --xla_cpu_enable_xprof_traceme=true')
  done = subprocess.run([sys.executable, '-m', 'experiments.profile_step', '--config=configs/test.py', '--steps=2',
                         '--config.augment.enabled=False'], cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  lines = done.stdout.splitlines()
  assert 'ms wall per step' in lines[0] and 'threads busy' in lines[0]
  ops = [l.split()[-1] for l in lines[2:-1]]
  assert any('convolution' in op or 'ynn_fusion' in op for op in ops), ops


def test_benchmark_end_to_end_feeds_the_step_from_the_input_pipeline(synthetic_data_dir, synthetic_builder):
  done = _run([sys.executable, '-m', 'experiments.benchmark', '--config=configs/test.py', '--steps=2', '--rounds=1',
               '--warmup=1', '--peer=off', '--peak_tflops=1.0', '--input_size=256', '--end_to_end',
               f'--config.dataset.data_dir={synthetic_data_dir}'])
  assert done.returncode == 0, done.stderr[-3000:]
  result = json.loads(done.stdout.strip().splitlines()[-1])
  assert result['end_to_end_images_per_s'] > 0 and 0 <= result['data_wait_fraction'] <= 1
