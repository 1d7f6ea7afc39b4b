"""--mode=benchmark: MMSeg's benchmark protocol on random inputs; fps, memory, FLOPs, JSON.

Checks that the tool runs and reports sane values, not how fast anything is.
"""
import json
import os
import subprocess
import sys

import pytest

from jseg import benchmark
from jseg import config as jconfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = 'configs/fcn.py:r18w16-d8_64x64_2k_synthetic'


def test_main_benchmark_prints_and_writes_json(tmp_path):
  out = tmp_path / 'bench.json'
  proc = subprocess.run(
      [sys.executable, '-m', 'jseg.main', '--mode=benchmark', f'--config={SPEC}',
       '--benchmark_images=12', '--benchmark_size=48x80', '--benchmark_train',
       '--benchmark_train_batch=2', '--benchmark_train_steps=2', f'--benchmark_json={out}',
       '--config.precision=bfloat16', '--config.train.remat=blocks'],
      cwd=ROOT, capture_output=True, text=True,
      env={**os.environ, 'JSEG_DATA': str(tmp_path / 'no_data')})  # needs no data set
  assert proc.returncode == 0, proc.stderr[-3000:]
  for text in ('img / s', 'ms / img', 'GFLOPs', 'memory: peak device', 'training: batch 2'):
    assert text in proc.stdout, proc.stdout
  result = json.loads(out.read_text())
  assert result['config'] == 'fcn_r18w16-d8_64x64_2k_synthetic'
  assert (result['precision'], result['remat']) == ('bfloat16', 'blocks')
  assert 'precision bfloat16, remat blocks' in proc.stdout
  inf = result['inference']
  # img_scale (64, 64) keep-ratio: 48x80 -> 38x64; logits resized back to 48x80.
  assert inf['input_size'] == [38, 64] and inf['output_size'] == [48, 80]
  assert inf['num_images'] == 12 and inf['warmup'] == 5
  for key in ('fps', 'ms_per_img', 'ms_per_img_median', 'gflops', 'gflops_per_img',
              'compiled_memory_bytes'):
    assert inf[key] > 0, key
  assert inf['ms_per_img'] == pytest.approx(1e3 / inf['fps'])
  assert inf['gflops_per_img'] >= inf['gflops'] * 0.99
  # The CPU keeps no memory statistics: null (printed 'n/a'); elsewhere a byte count.
  assert inf['peak_memory_bytes'] is None or inf['peak_memory_bytes'] > 0
  tr = result['train']
  assert tr['batch_size'] == 2 and tr['crop_size'] == [64, 64]
  for key in ('img_per_s', 'ms_per_iter', 'gflops_per_iter', 'compiled_memory_bytes'):
    assert tr[key] > 0, key
  # A training step (forward + backward, batch 2) costs more than two forwards.
  assert tr['gflops_per_iter'] > 2 * inf['gflops']


def test_test_input_size_follows_the_test_pipeline():
  cityscapes = jconfig.load('configs/fcn.py:r50-d8_512x1024_80k_cityscapes')
  assert benchmark.test_input_size(cityscapes) == (1024, 2048)
  assert benchmark.test_input_size(cityscapes, (512, 1024)) == (1024, 2048)
  ade = jconfig.load('configs/fcn.py:r50-d8_512x512_80k_ade20k')
  assert benchmark.test_input_size(ade, (375, 500)) == (512, 683)
  assert benchmark.parse_size('1024x2048') == (1024, 2048)
  with pytest.raises(ValueError, match='HxW'):
    benchmark.parse_size('1024')


def test_gpu_script_smoke_and_train_step_memory_arguments(tmp_path):
  """benchmarks/gpu.py --smoke on the CPU: its three kinds of job (train, memory, inference)
  measured and tabulated. The memory job compiles the step from shapes: its arguments are
  exactly the train state (float32 parameters, SGD's momentum, BN statistics, counts) and the
  batch, also in bfloat16."""
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from jseg.models import build_segmentor  # pylint: disable=import-outside-toplevel
  out = tmp_path / 'gpu.json'
  done = subprocess.run([sys.executable, os.path.join(ROOT, 'benchmarks', 'gpu.py'), '--smoke',
                         f'--json={out}', f'--markdown={tmp_path / "gpu.md"}'], cwd=ROOT,
                        capture_output=True, text=True, timeout=900)
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
  jobs = json.loads(out.read_text())['jobs']
  assert list(jobs) == ['train/fcn/bfloat16', 'memory/fcn/bfloat16/blocks',
                        'inference/fcn/float32'], jobs
  assert jobs['train/fcn/bfloat16']['img_per_s'] > 0 and jobs['inference/fcn/float32']['fps'] > 0
  table = (tmp_path / 'gpu.md').read_text()
  assert all(f'| {job} |' in table for job in jobs) and 'error' not in table

  memory = jobs['memory/fcn/bfloat16/blocks']
  config = jconfig.load('configs/fcn.py:r18-d8_512x1024_80k_cityscapes')
  variables = jax.eval_shape(build_segmentor(config).init, jax.random.key(0),
                             jax.ShapeDtypeStruct((1, 64, 128, 3), np.float32))
  params = sum(leaf.size for leaf in jax.tree_util.tree_leaves(variables['params']))
  stats = sum(leaf.size for leaf in jax.tree_util.tree_leaves(variables['batch_stats']))
  # params + momentum + stats, two int32 counts (the schedule's, the step); images float32,
  # labels int32 (batch 2, 64x128), the key (2 x uint32).
  expected = 4 * (2 * params + stats + 2) + 2 * 64 * 128 * (3 + 1) * 4 + 8
  assert memory['argument_bytes'] == expected, (memory, expected)
  assert memory['compiled_memory_bytes'] > memory['argument_bytes']
  assert (memory['precision'], memory['remat'], memory['batch_size'], memory['crop_size']) == (
      'bfloat16', 'blocks', 2, [64, 128])
