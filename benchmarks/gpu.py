"""One-shot accelerator benchmark: what a GPU or TPU session should measure, within a budget.

Jobs, most wanted first; each is written to the JSON as soon as it is done, so a run stopped
by its budget (or its machine) keeps what it measured, and ``--resume`` skips what is there:

1. ``train``: the seed's protocol, PSPNet and DeepLabV3+ R-101-D8, 512x1024, batch 2 per
   device, float32 and bfloat16 (img/s, ms/iter, XLA's memory of the step);
2. ``memory``: MMSeg's four fp16 rows (R-101-D8, batch 2, 512x1024) in float32, bfloat16 and
   bfloat16 + remat (``jseg.benchmark.train_step_memory``, compiled, not run);
3. ``inference``: the 13 methods (R-50-D8 / UperNet R-50 / HRNetV2 W18, Cityscapes
   512x1024) with MMSeg's protocol (batch 1, 200 images at 1024x2048), float32 and bfloat16;
4. ``train`` of the other 11 methods' R-50 configs, float32 and bfloat16.

    python benchmarks/gpu.py --json=gpu.json --markdown=gpu.md [--budget_s=540] [--resume]
    python benchmarks/gpu.py --smoke --json=/tmp/smoke.json   # CPU check: 3 jobs, tiny, R-18
    python benchmarks/gpu.py --jobs=memory/fcn,inference --json=part.json   # some jobs only
    python benchmarks/gpu.py --framework=mmseg --json=gpu.json --resume   # MMSeg's side

``--framework=mmseg`` runs the same jobs in MMSegmentation 1.2.2 + torch in its own process
(``benchmarks/gpu_mmseg.py``; ids ``mmseg/...``, into the same JSON), and the table sets each
jseg row beside MMSeg's with the ratio of their times. Each job reports its compile time (jseg)
too. It installs nothing. Peak device memory is the process's peak so far (``memory_stats``), so
it is given once at the end; per job, XLA's memory analysis of the compiled executable.
"""
import argparse
import json
import os
import sys
import time
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

from jseg import benchmark  # noqa: E402
from jseg import config as jconfig  # noqa: E402

R50 = {m: 'r50-d8_512x1024_80k_cityscapes' for m in (
    'fcn', 'pspnet', 'psanet', 'deeplabv3', 'deeplabv3plus', 'gcnet', 'nonlocal_net', 'ccnet',
    'danet', 'ann')}
R50.update(upernet='r50_512x1024_80k_cityscapes', hrnet='hr18_512x1024_80k_cityscapes',
           ocrnet='hr18_512x1024_80k_cityscapes')
SEED_PROTOCOL = ('pspnet', 'deeplabv3plus')
MMSEG = 'mmseg/'  # the prefix of MMSeg's job ids
FP16_ROWS = ('fcn', 'pspnet', 'deeplabv3', 'deeplabv3plus')
PRECISIONS = ('float32', 'bfloat16')


def jobs(smoke: bool):
  """(id, kind, method, variant, precision, remat) in the order they run."""
  r101, fp16 = 'r101-d8_512x1024_80k_cityscapes', 'r101-d8_512x1024_80k_fp16_cityscapes'
  if smoke:
    r18 = 'r18-d8_512x1024_80k_cityscapes'
    return [('train/fcn/bfloat16', 'train', 'fcn', r18, 'bfloat16', 'none'),
            ('memory/fcn/bfloat16/blocks', 'memory', 'fcn', r18, 'bfloat16', 'blocks'),
            ('inference/fcn/float32', 'inference', 'fcn', r18, 'float32', 'none')]
  out = [(f'train/{m}-r101/{p}', 'train', m, r101, p, 'none')
         for m in SEED_PROTOCOL for p in PRECISIONS]
  out += [(f'memory/{m}/{p}/{r}', 'memory', m, fp16, p, r) for m in FP16_ROWS
          for p, r in (('float32', 'none'), ('bfloat16', 'none'), ('bfloat16', 'blocks'))]
  out += [(f'inference/{m}/{p}', 'inference', m, v, p, 'none') for p in PRECISIONS
          for m, v in R50.items()]
  out += [(f'train/{m}/{p}', 'train', m, v, p, 'none') for m, v in R50.items()
          for p in PRECISIONS]
  return out


def run_job(kind, method, variant, precision, remat, smoke: bool) -> dict:
  config = jconfig.load(f'configs/{method}.py:{variant}')
  config.precision, config.train.remat = precision, remat
  config.train.loss_scale = None
  if smoke:
    config.data.crop_size = (64, 128)
    config.data.img_scale = (128, 64)
  if kind == 'inference':
    return benchmark.inference_benchmark(config, num_images=8 if smoke else 200,
                                         original_size=(64, 128) if smoke else None, log=None)
  batch = 2 * jax.local_device_count()
  if kind == 'memory':
    return benchmark.train_step_memory(config, 2)
  return benchmark.train_benchmark(config, batch, steps=1 if smoke else 10,
                                   warmup=1 if smoke else 3)


def _cells(job: str, r: Optional[dict], memory_key: str) -> list:
  """img/s, ms and memory (GiB) of one framework's result ``r`` (blank where not run)."""
  if r is None:
    return ['', '', '']
  if 'error' in r:
    return [f'error: {r["error"]}', '', '']
  gib = '' if r.get(memory_key) is None else f'{r[memory_key] / 2**30:.2f}'
  if job.startswith('memory/'):
    return ['', '', gib]
  return [f'{r.get("fps", r.get("img_per_s")):.2f}',
          f'{r.get("ms_per_img", r.get("ms_per_iter")):.1f}', gib]


def markdown(results: dict) -> str:
  """jseg's rows (XLA's memory of the compiled program) beside MMSeg's (torch's peak), with
  jseg's time over MMSeg's."""
  jobs = results['jobs']
  lines = [f'jseg: {results["device"]}, jax {results["jax"]}.'
           + (f' MMSeg: {results["mmseg_device"]}.' if 'mmseg_device' in results else ''), '',
           '| Job | jseg img/s | jseg ms | jseg XLA memory (GiB) | MMSeg img/s | MMSeg ms '
           '| MMSeg peak memory (GiB) | time jseg / MMSeg |', '|---|---|---|---|---|---|---|---|']
  for job in dict.fromkeys(j.removeprefix(MMSEG) for j in jobs):
    ours, theirs = jobs.get(job), jobs.get(MMSEG + job)
    cells = _cells(job, ours, 'compiled_memory_bytes') + _cells(job, theirs, 'peak_memory_bytes')
    ms = [r and r.get('ms_per_img', r.get('ms_per_iter')) for r in (ours, theirs)]
    cells.append(f'{ms[0] / ms[1]:.2f}' if all(ms) else '')
    lines.append(f'| {job} | ' + ' | '.join(cells) + ' |')
  peak = results.get('peak_memory_bytes')
  lines += ['', 'Peak device memory of the jseg process (GiB): '
            f'{"n/a" if peak is None else f"{peak / 2**30:.2f}"}.']
  return '\n'.join(lines) + '\n'


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--json', required=True)
  parser.add_argument('--markdown')
  parser.add_argument('--budget_s', type=float, default=540.0,
                      help='no job starts after this many seconds')
  parser.add_argument('--resume', action='store_true', help='skip the jobs already in --json')
  parser.add_argument('--smoke', action='store_true', help='tiny sizes, R-18 FCN (CPU check)')
  parser.add_argument('--cache_dir', help="JAX's persistent compilation cache: a rerun (or "
                      '--resume) loads the compiled steps instead of compiling them again')
  parser.add_argument('--framework', choices=('jseg', 'mmseg'), default='jseg',
                      help='whose side to run (mmseg: MMSeg 1.2.2 + torch, needs the test extra)')
  parser.add_argument('--jobs', default='',
                      help='comma-separated prefixes of the job ids to run (default: every job), '
                      'e.g. memory,train/pspnet-r101 (several processes can share the work)')
  args = parser.parse_args()
  prefixes, every = tuple(p for p in args.jobs.split(',') if p), jobs(args.smoke)
  selected = [j for j in every if not prefixes or j[0].startswith(prefixes)]
  if not selected:
    parser.error(f'--jobs={args.jobs} selects none of: {", ".join(j[0] for j in every)}')
  if args.cache_dir:
    jax.config.update('jax_compilation_cache_dir', args.cache_dir)
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 0)
  start = time.perf_counter()
  results = dict(device=benchmark.device_description(), jax=jax.__version__, jobs={})
  if args.resume and os.path.exists(args.json):
    with open(args.json) as f:
      results.update({k: v for k, v in json.load(f).items() if k != 'device'}, jax=jax.__version__)
  run = run_job
  if args.framework == 'mmseg':
    import gpu_mmseg  # pylint: disable=import-outside-toplevel  (torch only in this process)
    run, results['mmseg_device'] = gpu_mmseg.run_job, gpu_mmseg.description()
    selected = [(MMSEG + job, *spec) for job, *spec in selected if spec[-1] == 'none']
  for job, *spec in selected:
    if job in results['jobs']:
      continue
    elapsed = time.perf_counter() - start
    if elapsed > args.budget_s:
      print(f'budget of {args.budget_s:.0f} s spent: {job} and later not run (--resume)')
      break
    try:
      results['jobs'][job] = run(*spec, smoke=args.smoke)
    except Exception as e:  # pylint: disable=broad-except  (an out-of-memory row is a result)
      results['jobs'][job] = dict(error=f'{type(e).__name__}: {e}'[:300])
    print(f'[{time.perf_counter() - start:.0f} s] {job}: {results["jobs"][job]}', flush=True)
    if args.framework == 'jseg':
      results['peak_memory_bytes'] = benchmark.peak_memory()
    tmp = args.json + '.tmp'
    with open(tmp, 'w') as f:
      json.dump(results, f, indent=2)
    os.replace(tmp, args.json)
  table = markdown(results)
  print(table)
  if args.markdown:
    with open(args.markdown, 'w') as f:
      f.write(table)


if __name__ == '__main__':
  main()
