"""jseg's ONNX export (``jseg.export.export_onnx``) against jseg's own inference, per method, at
large awkward (odd, non-multiple-of-32) sizes, on this machine's CPU.

For each of the 13 methods, the smallest backbone MMSeg's zoo has for it at Cityscapes
(19 classes): R-18-D8 for FCN, PSPNet, DeepLabV3, DeepLabV3+; R-18 for UPerNet; HRNetV2-W18-Small
for HRNet and OCRNet; R-50-D8 for PSANet, GCNet, NonLocal, CCNet, DANet, ANN. Random weights
(``init_variables`` with key 0), every all-zero parameter leaf replaced by 0.1 * normal noise
(``tests/test_export.py``'s ``_model``: the attention heads' gammas nonzero). The ONNX graph is
exported once per method (output 'logits', BGR uint8 NHWC input, dynamic batch/height/width) and
run by ONNX Runtime (CPUExecutionProvider, default session options) at 513x769 and 385x641
(PSANet: 512x768 and 384x640, its export takes multiples of 16), batch 1, one random uint8 image
per size; jseg's reference is ``jseg.export.serving_fn(config, variables, 'logits')`` jitted
(``tests/fast_compile.jit``) inside ``cpu_conv.portable()`` (XLA's own convolutions, as
``tests/test_export.py``'s ``_jseg``).

Per row: the relative error max|onnx - jseg| / max|jseg|, the fraction of pixels whose argmax
labels agree, the number of Transposes of feature maps (rank >= 3: not a resize's weight
matrix) in the graph, and the export time.
Each row is printed (flushed) as it finishes, then the whole markdown table.

    python benchmarks/onnx_parity.py                      # all 13 methods
    python benchmarks/onnx_parity.py --methods=fcn,ccnet
"""
import argparse
import gc
import os
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'tests')]

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402

import fast_compile  # noqa: E402
import parity  # noqa: E402
from compare_mmseg import cpu_model, load_average  # noqa: E402
from jseg import config as jconfig  # noqa: E402
from jseg import export  # noqa: E402
from jseg.models import build_segmentor, cpu_conv, init_variables  # noqa: E402

# Cheapest first, so that a partial run still covers the most methods.
METHODS = {
    'fcn': 'r18-d8_512x1024_80k_cityscapes',
    'pspnet': 'r18-d8_512x1024_80k_cityscapes',
    'deeplabv3': 'r18-d8_512x1024_80k_cityscapes',
    'deeplabv3plus': 'r18-d8_512x1024_80k_cityscapes',
    'upernet': 'r18_512x1024_80k_cityscapes',
    'hrnet': 'hr18s_512x1024_80k_cityscapes',
    'ocrnet': 'hr18s_512x1024_80k_cityscapes',
    'psanet': 'r50-d8_512x1024_80k_cityscapes',
    'gcnet': 'r50-d8_512x1024_80k_cityscapes',
    'nonlocal_net': 'r50-d8_512x1024_80k_cityscapes',
    'ccnet': 'r50-d8_512x1024_80k_cityscapes',
    'danet': 'r50-d8_512x1024_80k_cityscapes',
    'ann': 'r50-d8_512x1024_80k_cityscapes',
}
SIZES = ((513, 769), (385, 641))
PSA_SIZES = ((512, 768), (384, 640))  # PSANet's export takes multiples of 16
HEADER = ('| method | variant | size | rel err | label agreement | map Transposes | export s |\n'
          '|---|---|---|---|---|---|---|')


def model(method, variant):
  config = jconfig.resolve_num_classes(jconfig.load(f'configs/{method}.py:{variant}'))
  return config, parity.nonzero_params(
      init_variables(build_segmentor(config), jax.random.key(0)))


def images(size, seed):
  return np.asarray(jax.random.randint(jax.random.key(seed), (1, *size, 3), 0, 256)
                    .astype(jnp.uint8))


def row(method, variant, size, err, agree, transposes, export_s, note=''):
  size = f'{size[0]}x{size[1]}' if size else '-'
  err = f'{err:.1e}' if err is not None else '-'
  agree = f'{100 * agree:.4f}%' if agree is not None else '-'
  export_s = f'{export_s:.0f}' if export_s is not None else '-'
  return (f'| {method} | {variant.split("_")[0]} | {size} | {err} | {agree} | '
          f'{transposes if transposes is not None else "-"} | {export_s} |'
          + (f' {note}' if note else ''))


def run(method, variant):
  """The method's table rows (one per size), each printed as it finishes."""
  rows = []
  config, variables = model(method, variant)
  t0 = time.perf_counter()
  onnx_model = export.export_onnx(config, variables, output='logits', channel_order='bgr')
  export_s = time.perf_counter() - t0
  transposes = sum(n.op_type == 'Transpose' and len(n.attribute[0].ints) >= 3
                   for n in onnx_model.graph.node)
  session = onnxruntime.InferenceSession(onnx_model.SerializeToString(),
                                         providers=['CPUExecutionProvider'])
  del onnx_model
  with cpu_conv.portable():
    fn = fast_compile.jit(export.serving_fn(config, variables, 'logits'))
    for i, size in enumerate(PSA_SIZES if method == 'psanet' else SIZES):
      x = images(size, seed=i)
      t1 = time.perf_counter()
      got = session.run(None, {'images': x})[0]
      onnx_s = time.perf_counter() - t1
      t1 = time.perf_counter()
      want = np.asarray(fn(x))
      jseg_s = time.perf_counter() - t1
      assert got.shape == want.shape == (1, *size, config.data.num_classes), (got.shape,
                                                                              want.shape)
      err = float(np.abs(got - want).max() / np.abs(want).max())
      agree = float((got.argmax(-1) == want.argmax(-1)).mean())
      r = row(method, variant, size, err, agree, transposes, export_s)
      rows.append(r)
      print(r, f'  (ORT {onnx_s:.1f} s, jseg compile+run {jseg_s:.1f} s)', flush=True)
      del got, want, x
  del session, fn, config, variables
  return rows


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--methods', default=','.join(METHODS))
  args = parser.parse_args()
  print(f'machine: {cpu_model()}, {os.cpu_count()} cores, load average {load_average()}; '
        f'jax {jax.__version__}, onnxruntime {onnxruntime.__version__}', flush=True)
  print(HEADER, flush=True)
  rows, start = [], time.perf_counter()
  for method in args.methods.split(','):
    variant = METHODS[method]
    t0 = time.perf_counter()
    try:
      rows += run(method, variant)
    except Exception as e:  # noqa: BLE001  (a failure is a row, the others still run)
      traceback.print_exc()
      r = row(method, variant, None, None, None, None, None,
              f'FAILED: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ""}')
      rows.append(r)
      print(r, flush=True)
    print(f'  {method}: {time.perf_counter() - t0:.0f} s', flush=True)
    gc.collect()
    jax.clear_caches()
  print(f'\nmachine: {cpu_model()}, {os.cpu_count()} cores, load average {load_average()}; '
        f'total {time.perf_counter() - start:.0f} s\n', flush=True)
  print(HEADER)
  print('\n'.join(rows), flush=True)


if __name__ == '__main__':
  main()
