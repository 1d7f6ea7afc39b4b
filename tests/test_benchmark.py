"""--mode=benchmark: MMSeg's benchmark protocol on random inputs; fps, memory, FLOPs, JSON.

Checks that the tool runs and reports sane values, not how fast anything is.
"""
import json
import os
import subprocess
import sys

import pytest

import fast_compile
from jseg import benchmark
from jseg import config as jconfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = 'configs/fcn.py:r18w16-d8_64x64_2k_synthetic'


def test_main_benchmark_prints_and_writes_json(tmp_path):
  """On 2 host devices as one spatial mesh (mesh.spatial=2): the image's (in slide mode: its
  one 64x64 window's) and the crops' rows split over both."""
  out = tmp_path / 'bench.json'
  proc = subprocess.run(
      [sys.executable, '-m', 'jseg.main', '--mode=benchmark', f'--config={SPEC}',
       '--benchmark_images=12', '--benchmark_size=80x80', '--benchmark_train',
       '--benchmark_train_batch=2', '--benchmark_train_steps=2', f'--benchmark_json={out}',
       '--config.precision=bfloat16', '--config.train.remat=blocks', '--config.mesh.spatial=2',
       '--config.test.mode=slide'],
      cwd=ROOT, capture_output=True, text=True,
      env=fast_compile.env(JSEG_DATA=str(tmp_path / 'no_data'),  # needs no data set
                           XLA_FLAGS='--xla_force_host_platform_device_count=2'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  for text in ('img / s', 'ms / img', 'GFLOPs', 'memory: peak device',
               'inference: batch 1 on mesh 1 x 2 (data x spatial; FLOPs and memory per device)',
               'training: batch 2 on mesh 1 x 2'):
    assert text in proc.stdout, proc.stdout
  result = json.loads(out.read_text())
  assert result['config'] == 'fcn_r18w16-d8_64x64_2k_synthetic'
  assert (result['precision'], result['remat']) == ('bfloat16', 'blocks')
  assert 'precision bfloat16, remat blocks' in proc.stdout
  inf, tr = result['inference'], result['train']
  # img_scale (64, 64) keep-ratio: 80x80 -> 64x64; logits resized back to 80x80. 64 rows
  # split evenly over 2 devices at every stride of the D8 network (no warning).
  assert inf['input_size'] == [64, 64] and inf['output_size'] == [80, 80]
  assert 'rows on mesh.spatial' not in proc.stderr
  assert inf['num_images'] == 12 and inf['warmup'] == 5
  for key in ('fps', 'ms_per_img', 'ms_per_img_median', 'gflops', 'gflops_per_img',
              'compiled_memory_bytes'):
    assert inf[key] > 0, key
  assert inf['ms_per_img'] == pytest.approx(1e3 / inf['fps'])
  # Per device: about half the whole network's forward each (plus the halos and the resize).
  assert inf['mesh'] == tr['mesh'] == {'data': 1, 'spatial': 2}
  assert inf['gflops'] * 0.49 <= inf['gflops_per_img'] <= inf['gflops'] * 0.7
  # The CPU keeps no memory statistics: null (printed 'n/a'); elsewhere a byte count.
  assert inf['peak_memory_bytes'] is None or inf['peak_memory_bytes'] > 0
  assert tr['batch_size'] == 2 and tr['crop_size'] == [64, 64]
  for key in ('img_per_s', 'ms_per_iter', 'gflops_per_iter', 'compiled_memory_bytes'):
    assert tr[key] > 0, key
  # A training step (forward + backward, batch 2) costs more than two forwards: per device,
  # one image's rows in 2 blocks, more than one forward.
  assert tr['gflops_per_iter'] > inf['gflops']


def test_test_input_size_follows_the_test_pipeline():
  cityscapes = jconfig.load('configs/fcn.py:r50-d8_512x1024_80k_cityscapes')
  assert benchmark.test_input_size(cityscapes) == (1024, 2048)
  assert benchmark.test_input_size(cityscapes, (512, 1024)) == (1024, 2048)
  ade = jconfig.load('configs/fcn.py:r50-d8_512x512_80k_ade20k')
  assert benchmark.test_input_size(ade, (375, 500)) == (512, 683)
  context = jconfig.load('configs/fcn.py:r101-d8_480x480_40k_pascal_context')
  assert benchmark.test_input_size(context) == (390, 520)  # a 375x500 VOC2010 image
  mapillary = jconfig.load('configs/deeplabv3plus.py:r50-d8_1280x1280_300k_mapillary_v1_65')
  with pytest.raises(ValueError, match=r"'mapillary_v1_65': give one, e.g. --benchmark_size="):
    benchmark.test_input_size(mapillary)
  assert benchmark.parse_size('1024x2048') == (1024, 2048)
  with pytest.raises(ValueError, match='HxW'):
    benchmark.parse_size('1024')


def test_gpu_script_smoke_and_train_step_memory_arguments(tmp_path):
  """benchmarks/gpu.py --smoke on the CPU: its three kinds of job (train, memory, inference)
  measured and tabulated, in two runs (``--jobs``, then ``--resume``). The memory job compiles
  the step from shapes: its arguments are exactly the train state (float32 parameters, SGD's
  momentum, BN statistics, counts) and the batch, also in bfloat16."""
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from jseg.models import build_segmentor  # pylint: disable=import-outside-toplevel
  out, script = tmp_path / 'gpu.json', os.path.join(ROOT, 'benchmarks', 'gpu.py')

  def gpu(*args):
    return subprocess.run([sys.executable, script, '--smoke', f'--json={out}', *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, env=fast_compile.env())

  done = gpu('--jobs=memory')  # a part of the list, then the rest: --resume keeps what is there
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
  assert list(json.loads(out.read_text())['jobs']) == ['memory/fcn/bfloat16/blocks']
  done = gpu('--resume', f'--markdown={tmp_path / "gpu.md"}')
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
  jobs = json.loads(out.read_text())['jobs']
  assert list(jobs) == ['memory/fcn/bfloat16/blocks', 'train/fcn/bfloat16',
                        'inference/fcn/float32'], jobs
  done = gpu('--jobs=nope')
  assert done.returncode == 2 and 'selects none of: train/fcn/bfloat16' in done.stderr, done.stderr
  assert jobs['train/fcn/bfloat16']['img_per_s'] > 0 and jobs['inference/fcn/float32']['fps'] > 0
  table = (tmp_path / 'gpu.md').read_text()
  assert all(f'| {job} |' in table for job in jobs) and 'error' not in table
  # MMSeg's side, in a process of its own, into the same JSON: each row beside jseg's.
  done = gpu('--framework=mmseg', '--resume', f'--markdown={tmp_path / "gpu.md"}')
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
  both = json.loads(out.read_text())['jobs']
  assert list(both) == [*jobs, 'mmseg/train/fcn/bfloat16', 'mmseg/inference/fcn/float32'], both
  assert both['mmseg/train/fcn/bfloat16']['precision'] == 'float32'  # AMP needs a GPU
  assert both['mmseg/train/fcn/bfloat16']['img_per_s'] > 0
  assert both['mmseg/inference/fcn/float32']['fps'] > 0
  table = (tmp_path / 'gpu.md').read_text()
  ratio = jobs['inference/fcn/float32']['ms_per_img'] / both['mmseg/inference/fcn/float32'][
      'ms_per_img']
  assert f'| {ratio:.2f} |' in table and 'MMSeg: CPU, torch' in table and 'error' not in table
  assert jobs['train/fcn/bfloat16']['compile_s'] > 0

  memory = jobs['memory/fcn/bfloat16/blocks']
  config = jconfig.load('configs/fcn.py:r18-d8_512x1024_80k_cityscapes')
  variables = jax.eval_shape(build_segmentor(config).init, jax.random.key(0),
                             jax.ShapeDtypeStruct((1, 64, 128, 3), np.float32))
  params = sum(leaf.size for leaf in jax.tree_util.tree_leaves(variables['params']))
  stats = sum(leaf.size for leaf in jax.tree_util.tree_leaves(variables['batch_stats']))
  # params + momentum + stats, two int32 counts (the schedule's, the step); the loader's batch:
  # images and labels uint8 (batch 2, 64x128), sizes int32 (2 x 2); the key (2 x uint32).
  expected = 4 * (2 * params + stats + 2) + 2 * 64 * 128 * (3 + 1) + 2 * 2 * 4 + 8
  assert memory['argument_bytes'] == expected, (memory, expected)
  assert memory['compiled_memory_bytes'] > memory['argument_bytes']
  assert (memory['precision'], memory['remat'], memory['batch_size'], memory['crop_size']) == (
      'bfloat16', 'blocks', 2, [64, 128])


def test_compare_mmseg_train_step_smoke(tmp_path):
  """benchmarks/compare_mmseg.py --jobs=train on one tiny config (FCN R-18-D8, batch 2 of
  33x49): both frameworks timed from the same weights, the first step's losses agree, and the
  train block replaces its stale block in the markdown file, the forward block left as it was.
  The seed's table is checked on a made-up R-101 row."""
  import importlib.util  # pylint: disable=import-outside-toplevel
  variant = 'r18-d8_512x1024_80k_cityscapes'
  md, out = tmp_path / 'benchmark.md', tmp_path / 'cmp.json'
  forward = ('<!-- compare_mmseg.py 33x49: begin -->\nforward table\n'
             '<!-- compare_mmseg.py 33x49: end -->\n')
  md.write_text(f'# Benchmark\n\n{forward}\n<!-- compare_mmseg.py train 33x49: begin -->\nstale\n'
                '<!-- compare_mmseg.py train 33x49: end -->\n\n## After\n')
  script = os.path.join(ROOT, 'benchmarks', 'compare_mmseg.py')
  proc = subprocess.run(
      [sys.executable, script, '--jobs=train', f'--methods=fcn:{variant}', '--input=33x49',
       '--reps=1', '--warmup=1', '--matmul=256', f'--out={md}', f'--json={out}'],
      cwd=ROOT, capture_output=True, text=True, timeout=600, env=fast_compile.env())
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  result = json.loads(out.read_text())
  assert 'forward' not in result and result['input'] == [33, 49]
  (row,) = result['train']
  assert (row['method'], row['variant'], row['batch']) == ('fcn', variant, 2), row
  for key in ('jseg_ms', 'mmseg_ms', 'gflops', 'jseg_gflop_s', 'ceiling', 'pct_ceil'):
    assert row[key] > 0, key
  assert row['ratio'] == pytest.approx(row['jseg_ms'] / row['mmseg_ms'])
  assert set(row['loss_rel_err']) == {'loss', 'decode.loss_ce', 'aux.loss_ce'}
  assert row['rel_err'] <= 1e-4, row['loss_rel_err']
  assert row['jseg_loss'] == pytest.approx(row['mmseg_loss'], rel=1e-4) and row['mmseg_loss'] > 0
  text = md.read_text()
  assert forward in text and 'stale' not in text and text.endswith('\n## After\n'), text
  assert f'| fcn | {variant} | ' in text and '<!-- compare_mmseg.py train 33x49: end -->' in text

  spec = importlib.util.spec_from_file_location('compare_mmseg', script)
  cmp = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(cmp)
  r101 = dict(row, method='pspnet', variant=cmp.R101, jseg_s=4.0, mmseg_s=5.0)
  r101.update(cmp.derived(r101))
  args = type('Args', (), dict(size=(512, 1024), train_batch=2, warmup=1, reps=3))
  block = cmp.markdown('train', [row, r101], result['matmul'], args, 60.0, ('1.0', '1.5'))
  assert '| Implementation | Throughput (img/s) |' in block
  assert '| jseg, PSPNet R-101-D8 | 0.5 |' in block
  assert '| MMSeg 1.2.2, PSPNet R-101-D8 | 0.4 |' in block
