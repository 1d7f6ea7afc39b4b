"""Per-device memory of the train step on full 1024x2048 frames with a ('data', 'spatial') mesh,
from XLA's memory analysis of the compiled (SPMD-partitioned) step: compiled from shapes on 8
host CPU devices, nothing runs (``jseg.benchmark.train_step_memory``).

    python benchmarks/spatial_memory.py [--method=pspnet] [--frame=1024x2048]

Rows: batch 2 on mesh 2 x 4 against batch 2 on mesh 2 x 1 (one frame per device), batch 1 on
1 x 8 against 1 x 1. The step is the one accelerators compile: XLA's own convolutions
(``cpu_conv.portable``; jseg's CPU rewrites of dilated convolutions regroup rows across the
blocks, so XLA:CPU's own step with them keeps more whole: 0.45x and 0.41x measured). XLA:CPU's
analysis; an accelerator's buffers differ (its fusions and layouts), the ratios less so. LLVM
code generation is skipped, as in train_memory.py: it cannot change the buffers.
"""
import argparse
import os
import sys

os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '')
                           + ' --xla_force_host_platform_device_count=8'
                           ' --xla_backend_optimization_level=0'
                           ' --xla_llvm_disable_expensive_passes=true')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

from jseg import benchmark  # noqa: E402
from jseg import config as jconfig  # noqa: E402
from jseg import mesh as jmesh  # noqa: E402
from jseg.models import cpu_conv  # noqa: E402

# (batch, data, spatial): each spatial mesh beside the same batch with whole frames per device.
PAIRS = (((2, 2, 4), (2, 2, 1)), ((1, 1, 8), (1, 1, 1)))


def measure(method: str, variant: str, frame=(1024, 2048)) -> list:
  rows = []
  for pair in PAIRS:
    for batch, data, spatial in pair:
      config = jconfig.load(f'configs/{method}.py:{variant}')
      config.data.crop_size = tuple(frame)
      mesh = jmesh.make_mesh(jax.devices()[:data * spatial], spatial=spatial)
      with cpu_conv.portable():
        row = benchmark.train_step_memory(config, batch, mesh)
      gib = row['compiled_memory_bytes'] / 2**30
      print(f'{method} batch {batch} mesh {data}x{spatial}: {gib:.2f} GiB per device '
            f'(compiled in {row["compile_s"]:.0f} s)', flush=True)
      rows.append(row)
  return rows


def markdown(method: str, variant: str, rows: list) -> str:
  lines = [f'| {method} {variant.split("_")[0]}, {rows[0]["crop_size"][0]}x'
           f'{rows[0]["crop_size"][1]} frames | mesh (data x spatial) | per device | '
           'ratio |', '|---|---|---|---|']
  for spatial, whole in zip(rows[0::2], rows[1::2]):
    for r, base in ((spatial, whole), (whole, whole)):
      m = r['mesh']
      lines.append(f'| batch {r["batch_size"]} | {m["data"]} x {m["spatial"]} | '
                   f'{r["compiled_memory_bytes"] / 2**30:.2f} GiB | '
                   f'{r["compiled_memory_bytes"] / base["compiled_memory_bytes"]:.2f} |')
  return '\n'.join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--method', default='pspnet')
  parser.add_argument('--variant', default='r50-d8_512x1024_80k_cityscapes')
  parser.add_argument('--frame', default='1024x2048', help='HxW (a quick look: 64x128)')
  args = parser.parse_args()
  rows = measure(args.method, args.variant, benchmark.parse_size(args.frame))
  print(markdown(args.method, args.variant, rows))


if __name__ == '__main__':
  main()
