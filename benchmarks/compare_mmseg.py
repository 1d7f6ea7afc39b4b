"""jseg vs MMSegmentation forward time, on this machine, in one run; writes docs/benchmark.md.

For each method at its 512x1024 Cityscapes config (R-50-D8, UperNet R-50, HRNetV2 W18), both
frameworks get the same random weights (MMSeg's model randomized as the parity tests do,
converted with ``jseg.convert.mmseg_to_jseg``) and the same random input, and run MMSeg's
``encode_decode`` (network forward + resize of the logits to the input size): eval mode,
batch 1, fp32, ``torch.no_grad``, the same number of warm-up and timed repetitions. jseg's
forward is one ``jax.jit`` executable (compiled before timing) run to ``block_until_ready``.

FLOPs are XLA's cost analysis of jseg's compiled forward (multiply-add = 2 FLOPs); achieved
GFLOP/s of both frameworks divide those FLOPs by their time, next to the machine's fp32
matmul rate (a large ``jnp`` matmul, the ceiling).

    python benchmarks/compare_mmseg.py                      # all 13 methods, 512x1024
    python benchmarks/compare_mmseg.py --input=256x512 --reps=3 --methods=fcn,pspnet

Needs the test extra (torch, mmengine, mmcv-lite, mmsegmentation); see README.md.
"""
import argparse
import datetime
import gc
import os
import platform
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'tests')]

import mmseg_ref as ref  # noqa: E402  (installs the mmcv.ops stand-in before mmseg)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from jseg import benchmark  # noqa: E402
from jseg import config as jconfig  # noqa: E402
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


def markers(size):
  """The comments around the generated block of one input size."""
  return (f'<!-- compare_mmseg.py {size[0]}x{size[1]}: begin -->',
          f'<!-- compare_mmseg.py {size[0]}x{size[1]}: end -->')


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


def compare(method: str, variant: str, size, warmup: int, reps: int, seed: int = 0) -> dict:
  """Times one method in jseg and MMSeg on the same weights and input.

  After the warm-up runs, the timed runs alternate (jseg, MMSeg, a 2048x2048 jnp matmul for
  the ceiling), so that other work on the machine disturbs both alike; the fastest of each
  is kept.
  """
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

  run_matmul, matmul_gflop = jnp_matmul(2048)
  fns = (run_jseg, run_mmseg, run_matmul)
  for fn in fns:
    timed(fn, warmup, 0)
  jseg_t, mmseg_t, matmul_t = (np.asarray(t) for t in zip(*[
      [pause_then_time(fn) for fn in fns] for _ in range(reps)]))
  ceiling = matmul_gflop / matmul_t.min()
  err = ref.rel_err(np.asarray(jseg_out), ref.nhwc(mm_out))
  return dict(method=method, variant=variant, gflops=flops / 1e9, compile_s=compile_s,
              ceiling=ceiling, jseg_s=float(jseg_t.min()), mmseg_s=float(mmseg_t.min()),
              jseg_all=jseg_t.tolist(), mmseg_all=mmseg_t.tolist(), rel_err=err)


def load_average() -> str:
  try:
    with open('/proc/loadavg') as f:
      return f.read().split()[0]
  except OSError:
    return 'n/a'


def markdown(rows, rates, args, elapsed_s: float, loads) -> str:
  ceiling = rates['jax']
  lines = [
      markers(args.size)[0],
      f'Measured {datetime.date.today().isoformat()} by `python benchmarks/compare_mmseg.py '
      f'{" ".join(sys.argv[1:])}` ({elapsed_s / 60:.0f} min).',
      '',
      f'- Machine: {cpu_model()}, {os.cpu_count()} cores; {platform.platform()}; 1-min load '
      f'average {loads[0]} at the start, {loads[1]} at the end (other work on the machine '
      'slows both frameworks; compare the ratios, not the times, across runs)',
      f'- jax {jax.__version__} ({jax.default_backend()}), torch {torch.__version__} '
      f'({torch.get_num_threads()} threads), mmsegmentation {ref.mmseg.__version__}',
      f'- Input 1x{args.size[0]}x{args.size[1]}x3 fp32, eval, batch 1; {args.warmup} warm-up + '
      f'{args.reps} timed runs each, alternating between the frameworks, the fastest shown (the '
      'least disturbed by other work). Work timed: MMSeg\'s `encode_decode` '
      '(forward + resize of the logits to the input size) on the same random weights.',
      f'- fp32 matmul ceiling: jnp {ceiling:.0f} GFLOP/s at {rates["n"]}x{rates["n"]} at the '
      f'start (torch {rates["torch"]:.0f} GFLOP/s); "ceil" is the best rate of a 2048x2048 jnp '
      'matmul timed between the runs of each method, "% ceil" jseg\'s achieved GFLOP/s over it.',
      '- GFLOPs: XLA cost analysis of jseg\'s compiled forward (multiply-add = 2; MMSeg\'s '
      '`get_flops` counts multiply-adds, i.e. half). "rel err": max |jseg - MMSeg| / max |MMSeg| of the logits.',
      '',
      '| method | config | GFLOPs | jseg ms | MMSeg ms | jseg / MMSeg | jseg GFLOP/s '
      '| ceil | % ceil | MMSeg GFLOP/s | rel err |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for r in rows:
    if 'error' in r:
      lines.append(f'| {r["method"]} | {r["variant"]} | failed: {r["error"]} ||||||||| |')
      continue
    jr, mr = r['gflops'] / r['jseg_s'], r['gflops'] / r['mmseg_s']
    lines.append(
        f'| {r["method"]} | {r["variant"]} | {r["gflops"]:.0f} | {1e3 * r["jseg_s"]:.0f} '
        f'| {1e3 * r["mmseg_s"]:.0f} | **{r["jseg_s"] / r["mmseg_s"]:.2f}** | {jr:.0f} '
        f'| {r["ceiling"]:.0f} | {100 * jr / r["ceiling"]:.0f}% | {mr:.0f} | {r["rel_err"]:.1e} |')
  ok = [r for r in rows if 'error' not in r]
  if ok:
    ratios = np.array([r['jseg_s'] / r['mmseg_s'] for r in ok])
    geo = float(np.exp(np.log(ratios).mean()))
    lines += ['', f'Geometric mean of jseg / MMSeg over {len(ok)} methods: {geo:.2f}; '
              f'{int((ratios <= 0.8).sum())} of {len(ok)} at or below 0.8.']
  lines.append(markers(args.size)[1])
  return '\n'.join(lines) + '\n'


def write_doc(path: str, block: str, size) -> None:
  """Replaces the generated block of ``size`` in ``path`` (the rest of the file is kept) or
  appends it; creates the file if needed."""
  begin, end = markers(size)
  if os.path.exists(path):
    with open(path) as f:
      text = f.read()
    if begin in text and end in text:
      text = re.sub(re.escape(begin) + '.*?' + re.escape(end) + '\n?', lambda _: block, text,
                    flags=re.S)
    else:
      text = text.rstrip('\n') + '\n\n' + block
  else:
    text = '# Benchmark\n\n' + block
  with open(path, 'w') as f:
    f.write(text)


def main():
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--input', default='512x1024', help='input HxW (default 512x1024)')
  p.add_argument('--methods', default=','.join(METHODS), help='comma-separated methods')
  p.add_argument('--reps', type=int, default=5, help='timed runs per framework')
  p.add_argument('--warmup', type=int, default=1, help='untimed runs per framework')
  p.add_argument('--out', default=os.path.join(ROOT, 'docs', 'benchmark.md'),
                 help='markdown file whose generated block is replaced ("" for none)')
  args = p.parse_args()
  args.size = benchmark.parse_size(args.input)
  methods = [m.strip() for m in args.methods.split(',') if m.strip()]
  unknown = set(methods) - set(METHODS)
  if unknown:
    p.error(f'unknown methods {sorted(unknown)}; valid: {", ".join(METHODS)}')
  start, load_start = time.perf_counter(), load_average()
  rates = matmul_rates()
  print(f'fp32 matmul: jnp {rates["jax"]:.0f} GFLOP/s, torch {rates["torch"]:.0f} GFLOP/s',
        flush=True)
  rows = []
  for m in methods:
    try:
      r = compare(m, METHODS[m], args.size, args.warmup, args.reps)
    except Exception as e:  # pylint: disable=broad-except
      r = dict(method=m, variant=METHODS[m], error=f'{type(e).__name__}: {e}'[:200])
      print(f'{m}: {r["error"]}', flush=True)
    else:
      print(f'{m:14s} {r["gflops"]:7.1f} GFLOPs  jseg {1e3 * r["jseg_s"]:8.1f} ms  '
            f'MMSeg {1e3 * r["mmseg_s"]:8.1f} ms  ratio {r["jseg_s"] / r["mmseg_s"]:.2f}  '
            f'ceil {r["ceiling"]:.0f}  compile {r["compile_s"]:.0f} s  rel err {r["rel_err"]:.1e}  '
            f'(jseg {np.round(1e3 * np.array(r["jseg_all"])).tolist()}, '
            f'MMSeg {np.round(1e3 * np.array(r["mmseg_all"])).tolist()})', flush=True)
    rows.append(r)
    gc.collect()
  block = markdown(rows, rates, args, time.perf_counter() - start, (load_start, load_average()))
  print(block)
  if args.out:
    write_doc(args.out, block, args.size)
    print(f'wrote {args.out}')


if __name__ == '__main__':
  main()
