"""jseg's CPU convolution rewrites (jseg.models.cpu_conv) against XLA's convolution and torch's,
one convolution at a time, on this machine; prints a markdown table.

Each row is a convolution the r50-d8 models run at 512x1024 (batch 1, NHWC, fp32): XLA's
``lax.conv_general_dilated`` at HIGHEST, the rewrite ``jseg.models.layers.conv2d`` picks for
it (the same call with the rewrites on), and torch's ``F.conv2d`` (oneDNN), timed
alternately, the fastest of ``--reps`` kept. "rel diff": max |rewrite - XLA| / max |XLA|.

    python benchmarks/cpu_conv.py [--reps=5] [--markdown=PATH]
"""
import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch
from jax import lax

from jseg.models import cpu_conv

# (what, H, W, in channels, out channels, kernel, dilation, groups)
CONVS = [
    ('heads\' 3x3 ConvModule', 64, 128, 2048, 512, 3, 1, 1),
    ('FCN\'s conv_cat', 64, 128, 2560, 512, 3, 1, 1),
    ('ASPP, dilation 12', 64, 128, 2048, 512, 3, 12, 1),
    ('ASPP, dilation 36', 64, 128, 2048, 512, 3, 36, 1),
    ('ResNet-D8 stage 4', 64, 128, 512, 512, 3, 4, 1),
    ('ResNet-D8 stage 3 (not rewritten)', 64, 128, 256, 256, 3, 2, 1),
    ('bottleneck 1x1 in', 64, 128, 2048, 512, 1, 1, 1),
    ('bottleneck 1x1 out', 64, 128, 512, 2048, 1, 1, 1),
    ('stage 3 1x1', 64, 128, 1024, 256, 1, 1, 1),
    ('DeepLabV3+ bottleneck depthwise', 128, 256, 560, 560, 3, 1, 560),
    ('separable ASPP depthwise, dilation 12', 64, 128, 2048, 2048, 3, 12, 2048),
]


def fastest(fns, reps):
  """Seconds of the fastest of ``reps`` alternating calls of each of ``fns`` (after one)."""
  for fn in fns:
    fn()
  times = [[] for _ in fns]
  for _ in range(reps):
    for t, fn in zip(times, fns):
      start = time.perf_counter()
      fn()
      t.append(time.perf_counter() - start)
  return [min(t) for t in times]


def row(what, h, w, cin, cout, k, d, groups, reps):
  rng = np.random.default_rng(0)
  x = rng.standard_normal((1, h, w, cin), np.float32)
  kernel = (rng.standard_normal((k, k, cin // groups, cout)) / np.sqrt(k * k * cin / groups)
            ).astype(np.float32)
  pad = d * (k // 2)
  args = ((1, 1), [(pad, pad)] * 2)
  kw = dict(rhs_dilation=(d, d), dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
            feature_group_count=groups, precision=lax.Precision.HIGHEST)
  xla = jax.jit(lambda x, k: lax.conv_general_dilated(x, k, *args, **kw))
  rewrite = jax.jit(lambda x, k: cpu_conv.conv_general_dilated(x, k, *args, **kw))
  kind = cpu_conv.rewrite_for(x, kernel, *args, None, (d, d), lax.conv_dimension_numbers(
      x.shape, kernel.shape, ('NHWC', 'HWIO', 'NHWC')), groups, 1, None)
  xj, kj = jnp.asarray(x), jnp.asarray(kernel)
  xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
  kt = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
  with torch.no_grad():
    t_xla, t_rewrite, t_torch = fastest([
        lambda: xla(xj, kj).block_until_ready(), lambda: rewrite(xj, kj).block_until_ready(),
        lambda: torch.nn.functional.conv2d(xt, kt, padding=pad, dilation=d, groups=groups)],
        reps)
  want = np.asarray(xla(xj, kj))
  diff = float(np.abs(np.asarray(rewrite(xj, kj)) - want).max() / np.abs(want).max())
  gflop = 2 * h * w * cin // groups * cout * k * k / 1e9
  return (f'| {what}: {k}x{k}{f" d{d}" if d > 1 else ""}, {h}x{w}, {cin} -> {cout}'
          f'{" depthwise" if groups > 1 else ""} | {gflop:.2f} | {1e3 * t_xla:.0f} '
          f'| {kind or "XLA"} | {1e3 * t_rewrite:.0f} | **{t_xla / t_rewrite:.2f}** '
          f'| {1e3 * t_torch:.0f} | {t_rewrite / t_torch:.2f} | {diff:.1e} |')


def main():
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--reps', type=int, default=5)
  p.add_argument('--markdown', default='', help='also write the table to this file')
  args = p.parse_args()
  torch.set_num_threads(os.cpu_count())
  lines = [f'`python benchmarks/cpu_conv.py --reps={args.reps}`, {time.strftime("%Y-%m-%d")}, '
           f'1-min load average {os.getloadavg()[0]:.2f} at the start', '',
           '| convolution | GFLOP | XLA ms | jseg rewrite | jseg ms | XLA / jseg | torch ms '
           '| jseg / torch | rel diff |', '|---|---:|---:|---|---:|---:|---:|---:|---:|']
  print('\n'.join(lines), flush=True)
  for conv in CONVS:
    lines.append(row(*conv, args.reps))
    print(lines[-1], flush=True)
  lines.append(f'\n1-min load average {os.getloadavg()[0]:.2f} at the end')
  print(lines[-1])
  if args.markdown:
    with open(args.markdown, 'w') as f:
      f.write('\n'.join(lines) + '\n')


if __name__ == '__main__':
  main()
