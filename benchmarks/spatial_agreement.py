"""Spatial meshes against the data-parallel step, every method, float64 and float32: one train step
and eval forward on 8 host CPU devices as 8 x 1, 2 x 4 and 1 x 8 ('data' x 'spatial'), from the
same state and batch (tests/spatial_step.py, MMSeg's SGD recipe, each method's smallest model).

    python benchmarks/spatial_agreement.py [--methods=fcn,pspnet] [--out=/tmp/spatial_agreement]

float64: the spatial meshes against 8 x 1 (the same sums in another order: measured 1e-13).
float32: each mesh against the float64 8 x 1 step, i.e. against exact arithmetic. A spatial mesh
is within float32 rounding where its error is that of the float32 data-parallel step. Errors:
updates (parameters, BatchNorm statistics) relative to the step's largest update of their
collection, outputs (loss, eval logits, the prediction at 61 x 37) to their largest magnitude
(``spatial_step.relative_errors``). Prints a markdown table.
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, 'tests'))

import spatial_step  # noqa: E402

MESHES = ('8x1', '2x4', '1x8')
UPDATES, OUTPUTS = ('params', 'batch_stats'), ('loss', 'logits', 'odd_size_logits')


def run(method: str, precision: str, out_dir: str) -> dict:
  path = os.path.join(out_dir, f'{method}.{precision}.npz')
  if not os.path.exists(path):
    env = {**os.environ, 'XLA_FLAGS': '--xla_force_host_platform_device_count=8'}
    subprocess.run([sys.executable, os.path.join(ROOT, 'tests', 'spatial_step.py'), path, method,
                    precision, *MESHES], cwd=ROOT, env=env, check=True, capture_output=True)
  return dict(np.load(path))


def worst(errors: dict, groups) -> float:
  return max(errors[g] for g in groups)


def measure(method: str, out_dir: str) -> dict:
  exact, single = run(method, 'float64', out_dir), run(method, 'float32', out_dir)
  row = {}
  for mesh in MESHES[1:]:
    row[f'float64 {mesh}'] = max(spatial_step.relative_errors(exact, mesh, exact).values())
  for mesh in MESHES:
    errors = spatial_step.relative_errors(single, mesh, exact)
    row[f'float32 {mesh} updates'] = worst(errors, UPDATES)
    row[f'float32 {mesh} outputs'] = worst(errors, OUTPUTS)
  errors = [spatial_step.relative_errors(single, mesh, single) for mesh in MESHES[1:]]
  row['float32 spatial vs 8x1'] = max(max(e.values()) for e in errors)
  return row


def markdown(rows: dict) -> str:
  lines = ['| method | float64: 2x4, 1x8 vs 8x1 | float32 vs exact, updates: 8x1, 2x4, 1x8 | '
           'float32 vs exact, outputs: 8x1, 2x4, 1x8 | float32: 2x4, 1x8 vs 8x1 |',
           '|---|---|---|---|---|']
  for method, r in rows.items():
    f = lambda keys: ', '.join(f'{r[k]:.1e}' for k in keys)
    lines.append(f'| {method} | {f([f"float64 {m}" for m in MESHES[1:]])} | '
                 f'{f([f"float32 {m} updates" for m in MESHES])} | '
                 f'{f([f"float32 {m} outputs" for m in MESHES])} | '
                 f'{r["float32 spatial vs 8x1"]:.1e} |')
  return '\n'.join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--methods', default=','.join(spatial_step.VARIANTS))
  parser.add_argument('--out', default='/tmp/spatial_agreement', help='the steps\' results (kept: '
                      'a second run reads them)')
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  rows = {}
  for method in args.methods.split(','):
    start = time.perf_counter()
    rows[method] = measure(method, args.out)
    print(f'{method}: {time.perf_counter() - start:.0f} s, load {os.getloadavg()[0]:.1f}: '
          + ', '.join(f'{k} {v:.1e}' for k, v in rows[method].items()), flush=True)
  print(markdown(rows))


if __name__ == '__main__':
  main()
