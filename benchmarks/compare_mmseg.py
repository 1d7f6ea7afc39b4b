"""jseg vs MMSegmentation on this machine, side by side in one run: the forward and the train
step; writes docs/benchmark.md.

Each method runs at its 512x1024 Cityscapes config (R-50-D8, UperNet R-50, HRNetV2 W18; the
train job also runs the seed's protocol, PSPNet and DeepLabV3+ R-101-D8). Both frameworks get
the same random weights (MMSeg's model randomized as the parity tests do, converted with
``jseg.convert.mmseg_to_jseg``), the same random input and the same number of warm-up and
timed repetitions. Jobs (``--jobs``, default both):

- ``forward``: MMSeg's ``encode_decode`` (network forward + resize of the logits to the input
  size): eval mode, batch 1, fp32, ``torch.no_grad``. jseg's forward is one ``jax.jit``
  executable (compiled before timing) run to ``block_until_ready``.
- ``train``: one training step on a batch of ``--train_batch`` (2) random uint8 images with
  random labels (20% ignored): forward in train mode, the config's losses (decode and
  auxiliary heads), backward, the config's SGD update (momentum, weight decay), BN statistics
  update. jseg: :mod:`jseg.train`'s jitted train step (state donated) on one device, fed the
  uint8 batch as its loader ships it (normalized inside the step); MMSeg: ``model.train_step(data,
  optim_wrapper)``, the optimizer built by mmengine from the config's ``optim_wrapper``, the
  config's data preprocessor normalizing the same uint8 batch. Dropout is off in both (its
  random masks cannot match), so that the first step's losses can be compared. jseg's steps
  run first, then MMSeg's (``back_to_back``).

The script restarts itself once with jseg's glibc malloc tunables (:mod:`jseg.malloc_tunables`,
as ``python -m jseg.main`` does), so both frameworks, in the one process, reuse freed memory
instead of faulting their temporaries in anew at every step (the train job returns the heap to
the system between the frameworks); ``JSEG_MALLOC_TUNABLES=0`` runs both at glibc's defaults.

FLOPs are XLA's cost analysis of jseg's compiled forward or step (multiply-add = 2 FLOPs);
achieved GFLOP/s of both frameworks divide those FLOPs by their time, next to the machine's
fp32 matmul rate (a large ``jnp`` matmul, the ceiling).

    python benchmarks/compare_mmseg.py                      # both jobs, all methods, 512x1024
    python benchmarks/compare_mmseg.py --input=256x512 --reps=3 --methods=fcn,pspnet
    python benchmarks/compare_mmseg.py --jobs=train --methods=fcn:r18-d8_512x1024_80k_cityscapes \
        --json=/tmp/cmp.json --out=/tmp/cmp.md               # method:variant picks a config

Needs the test extra (torch, mmengine, mmcv-lite, mmsegmentation); see README.md.
"""
import argparse
import ctypes
import datetime
import gc
import json
import os
import platform
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'tests')]

import mmseg_ref as ref  # noqa: E402  (installs the mmcv.ops stand-in before mmseg)
import parity  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402

from jseg import benchmark  # noqa: E402
from jseg import config as jconfig  # noqa: E402
from jseg import malloc_tunables  # noqa: E402
from jseg import mesh as jmesh  # noqa: E402
from jseg.convert import mmseg_to_jseg  # noqa: E402
from jseg.models import build_segmentor  # noqa: E402

# method -> its 512x1024 Cityscapes variant (80k schedule; the schedule does not change the model)
METHODS = {
    'fcn': 'r50-d8_512x1024_80k_cityscapes',
    'pspnet': 'r50-d8_512x1024_80k_cityscapes',
    'psanet': 'r50-d8_512x1024_80k_cityscapes',
    'deeplabv3': 'r50-d8_512x1024_80k_cityscapes',
    'deeplabv3plus': 'r50-d8_512x1024_80k_cityscapes',
    'upernet': 'r50_512x1024_80k_cityscapes',
    'hrnet': 'hr18_512x1024_80k_cityscapes',
    'gcnet': 'r50-d8_512x1024_80k_cityscapes',
    'nonlocal_net': 'r50-d8_512x1024_80k_cityscapes',
    'ccnet': 'r50-d8_512x1024_80k_cityscapes',
    'danet': 'r50-d8_512x1024_80k_cityscapes',
    'ann': 'r50-d8_512x1024_80k_cityscapes',
    'ocrnet': 'hr18_512x1024_80k_cityscapes',
}
# The seed's protocol (MMSeg v0.x's speed table: ResNet-101V1c, 1024x512, batch 2, s/iter):
# train job only, before the R-50 configs.
SEED_PROTOCOL = {'pspnet': 'PSPNet', 'deeplabv3plus': 'DeepLabV3+'}
R101 = 'r101-d8_512x1024_80k_cityscapes'
JOBS = ('forward', 'train')


def markers(size, job: str = 'forward'):
  """The comments around the generated block of one job and input size."""
  name = f'{"train " if job == "train" else ""}{size[0]}x{size[1]}'
  return (f'<!-- compare_mmseg.py {name}: begin -->', f'<!-- compare_mmseg.py {name}: end -->')


def job_configs(job: str, specs) -> list:
  """(method, variant) pairs that ``job`` runs for ``specs`` (``method`` or
  ``method:variant``): a bare method at its METHODS variant, and in the train job also at
  R-101-D8 (first) if the seed's protocol has it."""
  pairs = [tuple(s.split(':', 1)) if ':' in s else (s, METHODS[s]) for s in specs]
  if job == 'train':
    pairs = [(s, R101) for s in specs if s in SEED_PROTOCOL] + pairs
  return pairs


def cpu_model() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def timed(fn, warmup: int, reps: int) -> np.ndarray:
  """Seconds of each of ``reps`` calls of ``fn`` after ``warmup`` untimed ones."""
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(reps):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return np.asarray(times)


def pause_then_time(fn) -> float:
  """Seconds of ``fn()`` after a short pause, in which the other framework's worker threads
  stop spinning."""
  time.sleep(0.2)
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def jnp_matmul(n: int):
  """``run()`` computes an n x n fp32 jnp matmul; its GFLOP count."""
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  mm = jax.jit(lambda a, b: a @ b)
  return lambda: mm(a, a).block_until_ready(), 2 * n**3 / 1e9


def jnp_matmul_rate(n: int = 4096, reps: int = 5) -> float:
  """Best fp32 GFLOP/s of an n x n jnp matmul: the ceiling."""
  run, gflop = jnp_matmul(n)
  return gflop / timed(run, 2, reps).min()


def matmul_rates(n: int = 4096, reps: int = 5) -> dict:
  """Best fp32 GFLOP/s of an n x n matmul: jnp (the ceiling) and torch, for reference."""
  jax_rate = jnp_matmul_rate(n, reps)
  t = torch.randn(n, n)
  torch_t = timed(lambda: torch.mm(t, t), 2, reps).min()
  return dict(n=n, jax=jax_rate, torch=2 * n**3 / torch_t / 1e9)


def alternate(run_jseg, run_mmseg, warmup: int, reps: int) -> dict:
  """Times of ``run_jseg`` and ``run_mmseg``: after ``warmup`` untimed runs of each, ``reps``
  timed rounds of jseg, MMSeg and a 2048x2048 jnp matmul (for the ceiling), so that other work
  on the machine disturbs both alike; the fastest of each is kept. The 1-min load average is
  read after the last round."""
  run_matmul, matmul_gflop = jnp_matmul(2048)
  fns = (run_jseg, run_mmseg, run_matmul)
  for fn in fns:
    timed(fn, warmup, 0)
  jseg_t, mmseg_t, matmul_t = (np.asarray(t) for t in zip(*[
      [pause_then_time(fn) for fn in fns] for _ in range(reps)]))
  return summary(jseg_t, mmseg_t, matmul_gflop / matmul_t.min())


def summary(jseg_t, mmseg_t, ceiling: float) -> dict:
  """A row's times: the fastest and all of each framework's, the ceiling, the load now."""
  return dict(ceiling=ceiling, jseg_s=float(jseg_t.min()), mmseg_s=float(mmseg_t.min()),
              jseg_all=jseg_t.tolist(), mmseg_all=mmseg_t.tolist(), load=load_average())


def release_heap() -> None:
  """Returns the free memory of glibc's heap to the system (``malloc_trim``; nothing elsewhere)."""
  try:
    ctypes.CDLL(None).malloc_trim(0)
  except (OSError, AttributeError):
    pass


def back_to_back(run_jseg, run_mmseg, warmup: int, reps: int) -> dict:
  """``alternate``'s times, but each framework's ``warmup`` and ``reps`` runs back to back, the
  heap it kept (the malloc tunables) returned to the system before the other's. One process
  cannot keep both frameworks' train-step peaks on a 24 GB machine: alternating steps under the
  tunables ran out of memory at R-101-D8. Each framework's timed steps reuse the heap of its
  warm-up, as in a training run."""
  run_matmul, matmul_gflop = jnp_matmul(2048)
  times = []
  for fn in (run_jseg, run_mmseg):
    release_heap()
    timed(fn, warmup, 0)
    times.append(np.asarray([pause_then_time(fn) for _ in range(reps)]))
  release_heap()
  return summary(*times, matmul_gflop / timed(run_matmul, 1, reps).min())


def compare(method: str, variant: str, size, warmup: int, reps: int, seed: int = 0) -> dict:
  """Times the forward of one method in jseg and MMSeg on the same weights and input
  (``alternate``)."""
  h, w = size
  config = jconfig.load(f'configs/{method}.py:{variant}')
  mm = ref.randomize(ref.build_mmseg_model(ref.mmseg_config(method, variant).model), seed)
  mm.eval()
  variables = jax.device_put(mmseg_to_jseg(mm.state_dict(), config))
  seg = build_segmentor(config)
  x = np.random.default_rng(seed).standard_normal((1, h, w, 3)).astype(np.float32)
  xj, xt = jnp.asarray(x), ref.nchw(x)
  metas = [dict(img_shape=(h, w))]

  start = time.perf_counter()
  compiled = jax.jit(lambda v, x: seg.apply(v, x)).lower(variables, xj).compile()
  compile_s = time.perf_counter() - start
  flops = benchmark.cost(compiled).get('flops', 0.0)
  jseg_out = None

  def run_jseg():
    nonlocal jseg_out
    jseg_out = compiled(variables, xj).block_until_ready()

  mm_out = None

  def run_mmseg():
    nonlocal mm_out
    with torch.no_grad():
      mm_out = mm.encode_decode(xt, metas)

  times = alternate(run_jseg, run_mmseg, warmup, reps)
  err = ref.rel_err(np.asarray(jseg_out), ref.nhwc(mm_out))
  return dict(method=method, variant=variant, gflops=flops / 1e9, compile_s=compile_s,
              **times, rel_err=err)


def compare_train(method: str, variant: str, size, warmup: int, reps: int, batch: int = 2,
                  seed: int = 0) -> dict:
  """Times one training step of one method in jseg and MMSeg from the same weights on the same
  batch (``back_to_back``); ``loss_rel_err``: each loss term of the first step, jseg against
  MMSeg, ``rel_err`` the largest."""
  h, w = size
  config, mm = parity.pair(method, variant, seed, dropout=False)
  variables = mmseg_to_jseg(mm.state_dict(), config)
  mm_cfg = ref.mmseg_config(method, variant)
  mm.data_preprocessor = ref.MODELS.build(dict(mm_cfg.model.data_preprocessor, size=(h, w)))
  optim_wrapper = build_optim_wrapper(mm.train(), mm_cfg.optim_wrapper)
  rng = np.random.default_rng(seed)
  bgr = rng.integers(0, 256, (batch, h, w, 3), np.uint8)  # as MMSeg's loader: uint8 BGR
  labels = parity.random_labels(rng, batch, h, w, config.data.num_classes)
  data = dict(inputs=[torch.from_numpy(np.ascontiguousarray(i.transpose(2, 0, 1))) for i in bgr],
              data_samples=parity.data_samples(labels))
  start = time.perf_counter()
  compiled, state, step_args = benchmark.compiled_train_step(
      config, variables, bgr, labels.astype(np.uint8),
      jmesh.make_mesh(jax.local_devices()[:1]), seed)
  compile_s = time.perf_counter() - start
  first = {}

  def run_jseg():
    nonlocal state
    state, scalars = jax.block_until_ready(compiled(state, *step_args))
    first.setdefault('jseg', scalars)

  def run_mmseg():
    first.setdefault('mmseg', mm.train_step(data, optim_wrapper))

  times = back_to_back(run_jseg, run_mmseg, warmup, reps)
  got = {k: float(v) for k, v in first['jseg'].items()}
  want = {k: float(v.detach()) for k, v in first['mmseg'].items() if not k.endswith('acc_seg')}
  errs = {k: ref.rel_err(got[k], v) for k, v in want.items()}
  return dict(method=method, variant=variant, batch=batch,
              gflops=benchmark.cost(compiled).get('flops', 0.0) / 1e9, compile_s=compile_s,
              **times, rel_err=max(errs.values()), loss_rel_err=errs, jseg_loss=got['loss'],
              mmseg_loss=want['loss'])


def load_average() -> str:
  try:
    with open('/proc/loadavg') as f:
      return f.read().split()[0]
  except OSError:
    return 'n/a'


def derived(r: dict) -> dict:
  """A row's times in ms, jseg / MMSeg, both frameworks' GFLOP/s and jseg's % of the ceiling."""
  jr, mr = r['gflops'] / r['jseg_s'], r['gflops'] / r['mmseg_s']
  return dict(jseg_ms=1e3 * r['jseg_s'], mmseg_ms=1e3 * r['mmseg_s'],
              ratio=r['jseg_s'] / r['mmseg_s'], jseg_gflop_s=jr, mmseg_gflop_s=mr,
              pct_ceil=100 * jr / r['ceiling'])


def seed_table(rows, args) -> list:
  """The seed's table, "Implementation | Throughput (img/s)", from the R-101-D8 train rows."""
  ok = [r for r in rows if r['variant'] == R101 and r['method'] in SEED_PROTOCOL
        and 'error' not in r]
  if not ok:
    return []
  lines = ['', 'The seed\'s protocol (MMSeg v0.x\'s speed table: ResNet-101V1c, 1024x512, '
           f'batch 2, s/iter) on this machine, {args.size[0]}x{args.size[1]}, batch '
           f'{args.train_batch}: img/s = batch / train-step time.', '',
           '| Implementation | Throughput (img/s) |', '|---|---:|']
  for r in ok:
    name = f'{SEED_PROTOCOL[r["method"]]} R-101-D8'
    lines += [f'| jseg, {name} | {r["batch"] / r["jseg_s"]:.3g} |',
              f'| MMSeg {ref.mmseg.__version__}, {name} | {r["batch"] / r["mmseg_s"]:.3g} |']
  return lines


def markdown(job: str, rows, rates, args, elapsed_s: float, loads) -> str:
  ceiling = rates['jax']
  h, w = args.size
  if job == 'forward':
    what, err = 'forward', 'max |jseg - MMSeg| / max |MMSeg| of the logits'
    work = (f'- Input 1x{h}x{w}x3 fp32, eval, batch 1; {args.warmup} warm-up + {args.reps} timed '
            'runs each, alternating between the frameworks, the fastest shown (the least '
            'disturbed by other work). Work timed: MMSeg\'s `encode_decode` (forward + resize of '
            'the logits to the input size) on the same random weights.')
  else:
    what, err = 'train step', 'the largest |jseg - MMSeg| / |MMSeg| of the first step\'s losses'
    work = (f'- Train step, batch {args.train_batch} of {h}x{w} random images (uint8) and labels '
            f'(20% ignored), fp32; {args.warmup} warm-up + {args.reps} timed steps each, '
            'jseg\'s then MMSeg\'s, glibc\'s free heap returned to the system between them, '
            'the fastest shown. Work timed: forward in train '
            'mode, the config\'s losses (decode + auxiliary heads), backward, the config\'s SGD '
            'update (momentum, weight decay), BN statistics update; jseg: `jseg.train`\'s jitted '
            'train step (state donated) on one device, the uint8 batch normalized inside it; '
            'MMSeg: `model.train_step(data, optim_wrapper)`, the config\'s `optim_wrapper` and '
            'data preprocessor (which normalizes the uint8 batch: the same input). Same random '
            'weights; dropout off in both (its random masks cannot match).')
  lines = [
      markers(args.size, job)[0],
      f'Measured {datetime.date.today().isoformat()} by `python benchmarks/compare_mmseg.py '
      f'{" ".join(sys.argv[1:])}` ({elapsed_s / 60:.0f} min).',
      '',
      f'- Machine: {cpu_model()}, {os.cpu_count()} cores; {platform.platform()}; 1-min load '
      f'average {loads[0]} at the start, {loads[1]} at the end (other work on the machine '
      'slows both frameworks; compare the ratios, not the times, across runs)',
      f'- jax {jax.__version__} ({jax.default_backend()}), torch {torch.__version__} '
      f'({torch.get_num_threads()} threads), mmsegmentation {ref.mmseg.__version__}; '
      f'GLIBC_TUNABLES={os.environ.get("GLIBC_TUNABLES", "")!r} (one process: the same for both)',
      work,
      f'- fp32 matmul ceiling: jnp {ceiling:.0f} GFLOP/s at {rates["n"]}x{rates["n"]} at the '
      f'start (torch {rates["torch"]:.0f} GFLOP/s); "ceil" is the best rate of a 2048x2048 jnp '
      'matmul timed between the runs of each method, "% ceil" jseg\'s achieved GFLOP/s over it.',
      f'- GFLOPs: XLA cost analysis of jseg\'s compiled {what} (multiply-add = 2; MMSeg\'s '
      f'`get_flops` counts multiply-adds, i.e. half). "rel err": {err}. "load": the 1-min load '
      'average after the method\'s timed runs.',
      '',
      '| method | config | GFLOPs | jseg ms | MMSeg ms | jseg / MMSeg | jseg GFLOP/s '
      '| ceil | % ceil | MMSeg GFLOP/s | rel err | load |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for r in rows:
    if 'error' in r:
      lines.append(f'| {r["method"]} | {r["variant"]} | failed: {r["error"]} |' + ' |' * 9)
      continue
    lines.append(
        f'| {r["method"]} | {r["variant"]} | {r["gflops"]:.0f} | {r["jseg_ms"]:.0f} '
        f'| {r["mmseg_ms"]:.0f} | **{r["ratio"]:.2f}** | {r["jseg_gflop_s"]:.0f} '
        f'| {r["ceiling"]:.0f} | {r["pct_ceil"]:.0f}% | {r["mmseg_gflop_s"]:.0f} '
        f'| {r["rel_err"]:.1e} | {r["load"]} |')
  ok = [r for r in rows if 'error' not in r]
  if ok:
    ratios = np.array([r['ratio'] for r in ok])
    geo = float(np.exp(np.log(ratios).mean()))
    lines += ['', f'Geometric mean of jseg / MMSeg over {len(ok)} '
              f'{"methods" if job == "forward" else "configs"}: {geo:.2f}; '
              f'{int((ratios <= 0.8).sum())} of {len(ok)} at or below 0.8.']
  if job == 'train':
    lines += seed_table(rows, args)
  lines.append(markers(args.size, job)[1])
  return '\n'.join(lines) + '\n'


def write_doc(path: str, block: str, marks) -> None:
  """Replaces the generated block between ``marks`` (begin, end) in ``path``, keeping the rest
  of the file (other blocks included); a new block goes after this script's last block, else
  at the end. Creates the file if needed."""
  begin, end = marks
  if os.path.exists(path):
    with open(path) as f:
      text = f.read()
    if begin in text and end in text:
      text = re.sub(re.escape(begin) + '.*?' + re.escape(end) + '\n?', lambda _: block, text,
                    flags=re.S)
    else:
      ends = list(re.finditer(r'<!-- compare_mmseg\.py [^>]*: end -->\n?', text))
      at = ends[-1].end() if ends else len(text)
      text = text[:at].rstrip('\n') + '\n\n' + block + text[at:]
  else:
    text = '# Benchmark\n\n' + block
  with open(path, 'w') as f:
    f.write(text)


def main():
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--input', default='512x1024', help='input HxW (default 512x1024)')
  p.add_argument('--methods', default=','.join(METHODS),
                 help='comma-separated methods; method:variant picks one config of '
                 'configs/<method>.py')
  p.add_argument('--jobs', default=','.join(JOBS), help='comma-separated: forward, train')
  p.add_argument('--reps', type=int, default=5, help='timed runs per framework')
  p.add_argument('--warmup', type=int, default=1, help='untimed runs per framework')
  p.add_argument('--train_batch', type=int, default=2, help='batch of the train job')
  p.add_argument('--matmul', type=int, default=4096,
                 help='size of the square matmul whose rate is measured at the start')
  p.add_argument('--out', default=os.path.join(ROOT, 'docs', 'benchmark.md'),
                 help='markdown file whose generated blocks are replaced ("" for none)')
  p.add_argument('--json', default='', help='JSON file of every measurement ("" for none)')
  args = p.parse_args()
  args.size = benchmark.parse_size(args.input)
  specs = [m.strip() for m in args.methods.split(',') if m.strip()]
  unknown = {s.split(':')[0] for s in specs} - set(METHODS)
  if unknown:
    p.error(f'unknown methods {sorted(unknown)}; valid: {", ".join(METHODS)}')
  jobs = [j.strip() for j in args.jobs.split(',') if j.strip()]
  if not jobs or set(jobs) - set(JOBS):
    p.error(f'--jobs={args.jobs}; valid: {", ".join(JOBS)}')
  rates = matmul_rates(args.matmul)
  print(f'fp32 matmul: jnp {rates["jax"]:.0f} GFLOP/s, torch {rates["torch"]:.0f} GFLOP/s',
        flush=True)
  results = {}
  for job in jobs:
    start, load_start = time.perf_counter(), load_average()
    rows = []
    for m, v in job_configs(job, specs):
      try:
        r = (compare(m, v, args.size, args.warmup, args.reps) if job == 'forward' else
             compare_train(m, v, args.size, args.warmup, args.reps, args.train_batch))
      except Exception as e:  # pylint: disable=broad-except
        r = dict(method=m, variant=v, error=f'{type(e).__name__}: {e}'[:200])
        print(f'{job} {m} {v}: {r["error"]}', flush=True)
      else:
        r.update(derived(r))
        losses = ''.join(f'  {k} rel err {e:.1e}' for k, e in r.get('loss_rel_err', {}).items())
        print(f'{job:7s} {m:14s} {r["gflops"]:7.1f} GFLOPs  jseg {r["jseg_ms"]:8.1f} ms  '
              f'MMSeg {r["mmseg_ms"]:8.1f} ms  ratio {r["ratio"]:.2f}  ceil {r["ceiling"]:.0f}  '
              f'compile {r["compile_s"]:.0f} s  rel err {r["rel_err"]:.1e}{losses}  '
              f'load {r["load"]}  (jseg {np.round(1e3 * np.array(r["jseg_all"])).tolist()}, '
              f'MMSeg {np.round(1e3 * np.array(r["mmseg_all"])).tolist()})', flush=True)
      rows.append(r)
      gc.collect()
    results[job] = rows
    block = markdown(job, rows, rates, args, time.perf_counter() - start,
                     (load_start, load_average()))
    print(block)
    if args.out:
      write_doc(args.out, block, markers(args.size, job))
      print(f'wrote {args.out}')
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(dict(date=datetime.datetime.now().isoformat(timespec='seconds'),
                     command=' '.join(sys.argv[1:]), machine=cpu_model(), cores=os.cpu_count(),
                     platform=platform.platform(), jax=jax.__version__,
                     backend=jax.default_backend(), torch=torch.__version__,
                     torch_threads=torch.get_num_threads(), mmseg=ref.mmseg.__version__,
                     glibc_tunables=os.environ.get('GLIBC_TUNABLES', ''),
                     input=list(args.size), train_batch=args.train_batch, warmup=args.warmup,
                     reps=args.reps, matmul=rates, **results), f, indent=2)
    print(f'wrote {args.json}')


if __name__ == '__main__':
  malloc_tunables.reexec_with_tunables()
  main()
