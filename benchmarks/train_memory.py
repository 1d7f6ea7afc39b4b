"""Train-step memory of MMSeg's fp16 zoo rows (R-101-D8, 512x1024, batch 2 per device) in
float32, bfloat16 and bfloat16 + remat, from XLA's memory analysis of the compiled step
(``jseg.benchmark.train_step_memory``: compiled from shapes, nothing runs), beside MMSeg's
published memory of the same rows (fp32 and fp16 on V100s). Writes a JSON and a markdown table.

    python benchmarks/train_memory.py --json=/tmp/train_memory.json --markdown=/tmp/table.md
    python benchmarks/train_memory.py --crop=64x128 --methods=fcn   # a quick look

On XLA:CPU the bfloat16 figures are not what a GPU or TPU needs: XLA:CPU computes bfloat16
convolutions in float32 (converts around each), so its buffers are larger, not smaller; read
them on the accelerator. The LLVM code generation is skipped where it cannot change the buffers
(``--xla_backend_optimization_level=0``), which makes the CPU compile several times faster.
"""
import argparse
import json
import os
import sys

os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' --xla_backend_optimization_level=0'
                           ' --xla_llvm_disable_expensive_passes=true')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

from jseg import benchmark  # noqa: E402
from jseg import config as jconfig  # noqa: E402

VARIANT = 'r101-d8_512x1024_80k_fp16_cityscapes'
# MMSeg's published train memory (GB, 4 x V100, batch 2 per GPU): fp32 row, fp16 row.
MMSEG_GB = {'fcn': (9.2, 5.37), 'pspnet': (9.6, 5.34), 'deeplabv3': (9.6, 5.75),
            'deeplabv3plus': (11.0, 6.35)}
SETTINGS = (('float32', 'none'), ('bfloat16', 'none'), ('bfloat16', 'blocks'))


def measure(method: str, crop, batch: int) -> list:
  rows = []
  for precision, remat in SETTINGS:
    config = jconfig.load(f'configs/{method}.py:{VARIANT}')
    config.precision, config.train.remat = precision, remat
    config.train.loss_scale = None
    config.data.crop_size = tuple(crop)
    row = dict(method=method, **benchmark.train_step_memory(config, batch))
    print(f'{method} {precision} remat {remat}: {row["compiled_memory_bytes"] / 2**30:.2f} GiB '
          f'(compiled in {row["compile_s"]:.0f} s)', flush=True)
    rows.append(row)
  return rows


def markdown(rows: list, backend: str) -> str:
  head = ('| Method (R-101-D8) | float32 | bfloat16 | bfloat16 + remat | bf16 / f32 | '
          'bf16 + remat / f32 | MMSeg fp32 | MMSeg fp16 |\n|---|---|---|---|---|---|---|---|\n')
  lines = []
  for method in dict.fromkeys(r['method'] for r in rows):
    f32, bf16, remat = (r['compiled_memory_bytes'] / 2**30 for r in rows if r['method'] == method)
    mm = MMSEG_GB.get(method, (float('nan'),) * 2)
    lines.append(f'| {method} | {f32:.2f} GiB | {bf16:.2f} GiB | {remat:.2f} GiB | '
                 f'{bf16 / f32:.2f} | {remat / f32:.2f} | {mm[0]} GB | {mm[1]} GB |')
  return f'XLA memory analysis on {backend}.\n\n' + head + '\n'.join(lines) + '\n'


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--methods', default=','.join(MMSEG_GB))
  parser.add_argument('--crop', default='512x1024')
  parser.add_argument('--batch', type=int, default=2)
  parser.add_argument('--json')
  parser.add_argument('--markdown')
  args = parser.parse_args()
  crop = [int(v) for v in args.crop.split('x')]
  rows = [r for m in args.methods.split(',') for r in measure(m, crop, args.batch)]
  table = markdown(rows, f'{jax.default_backend()} ({jax.devices()[0].device_kind})')
  print(table)
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(rows, f, indent=2)
  if args.markdown:
    with open(args.markdown, 'w') as f:
      f.write(table)


if __name__ == '__main__':
  main()
