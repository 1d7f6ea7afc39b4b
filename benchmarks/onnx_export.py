"""ONNX Runtime (CPU) on MMSeg's ONNX and on jseg's, and jseg's jitted forward: same weights.

MMSeg's ONNX is the MMDeploy route (``torch.onnx.export``), jseg's is ``jseg.export``'s; all
three run side by side on this machine's CPU.

Per method (default FCN, PSPNet, DeepLabV3+ R-50-D8 and OCRNet HRNetV2-W18 at their 512x1024
Cityscapes configs), batch 1, fp32; MMSeg's model randomized as the parity tests do, its weights
converted with ``jseg.convert.mmseg_to_jseg`` (``compare_mmseg.compare``'s setup), one random
uint8 BGR image for all three contestants:

- **MMSeg-ONNX**: ``torch.onnx.export`` (the TorchScript exporter, ``dynamo=False``, opset 17)
  of a module whose forward is ``model.encode_decode(x, [dict(img_shape=x.shape[2:])])``, as
  MMDeploy's segmentor rewrite passes the traced input shape: normalized float NCHW in, logits
  (N, C, H, W) at the input size out; batch, height and width dynamic. Where the dynamic export
  fails it is exported at the benchmark size (static); where that fails on
  ``adaptive_avg_pool2d`` (PSPNet's pyramid pooling: the exporter needs the output size to
  divide the input size), with MMDeploy's rewrite of it (``F.avg_pool2d`` with kernel = stride
  = floor(input / output), which is not adaptive pooling where the size does not divide: the
  "rel err" shows what it changes). The file is kept in a temporary directory. Run by ONNX
  Runtime, CPUExecutionProvider, default session options (all graph optimizations, default
  threads), on the normalized NCHW input.
- **jseg-ONNX**: ``jseg.export.export_onnx(config, variables, output='logits',
  channel_order='bgr')``: the uint8 NHWC BGR image in (normalization inside), logits
  (N, H, W, C) out; same ONNX Runtime settings.
- **jseg-jit**: ``jax.jit`` of the model's apply on the normalized NHWC input
  (``compare_mmseg.compare``), compiled before timing, run to ``block_until_ready``.

After ``--warmup`` untimed runs of each, ``--reps`` rounds run each contestant once in turn (a
short pause before each, ``compare_mmseg.pause_then_time``), so that load drifts hit all alike;
the median and the fastest time per image are reported, the ratios from the medians. Also per
ONNX graph: its node count and ``Transpose`` count as in the file (before ONNX Runtime's
optimizations; local functions inlined, subgraphs counted), whether its height and width are
symbolic, whether it runs at ``--other_size`` (385x641, another random image) and how far its
logits there are from the forward it was exported from (MMSeg-ONNX: torch ``encode_decode``;
jseg-ONNX: jseg's jitted forward), and the max relative error of each contestant's logits
against MMSeg's torch ``encode_decode`` at the benchmark size.

The script restarts itself once with jseg's glibc malloc tunables, as compare_mmseg.py does.

    python benchmarks/onnx_export.py                          # 4 methods, 512x1024, 5 reps
    python benchmarks/onnx_export.py --methods=fcn,pspnet --reps=3 --doc=docs/benchmark.md
    python benchmarks/onnx_export.py --smoke                  # FCN R-18-D8 at 64x128, 1 rep

Needs the test extra (torch, mmengine, mmcv-lite, mmsegmentation) and onnx, onnxruntime.
"""
import argparse
import collections
import contextlib
import datetime
import gc
import json
import os
import platform
import re
import sys
import tempfile
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'tests'), os.path.join(ROOT, 'benchmarks')]

import compare_mmseg as cm  # noqa: E402  (imports tests/mmseg_ref.py, the mmcv.ops stand-in)
import mmseg_ref as ref  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnx.inliner  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from jseg import benchmark  # noqa: E402
from jseg import config as jconfig  # noqa: E402
from jseg import export as jexport  # noqa: E402
from jseg import malloc_tunables  # noqa: E402
from jseg.convert import mmseg_to_jseg  # noqa: E402
from jseg.models import build_segmentor  # noqa: E402

METHODS = ('fcn', 'pspnet', 'deeplabv3plus', 'ocrnet')  # at compare_mmseg.METHODS' variants
SMOKE_METHOD = 'fcn:r18-d8_512x1024_80k_cityscapes'
OPSET = 17
CONTESTANTS = ('mmseg_onnx', 'jseg_onnx', 'jseg_jit')
NAMES = {'mmseg_onnx': 'MMSeg-ONNX', 'jseg_onnx': 'jseg-ONNX', 'jseg_jit': 'jseg-jit'}
SAME = 1e-4  # rel err up to which logits at the other size count as right
ort.set_default_logger_severity(3)  # errors only: no notes on unused initializers


def markers(size):
  return (f'<!-- onnx_export.py {size[0]}x{size[1]}: begin -->',
          f'<!-- onnx_export.py {size[0]}x{size[1]}: end -->')


def short(text, n: int = 300) -> str:
  """One line of at most ``n`` characters, fit for a markdown table cell."""
  text = ' '.join(str(text).split()).replace('|', '/')
  return text if len(text) <= n else text[:n - 3] + '...'


def brief(error: str, n: int = 300) -> str:
  """An error's text up to the TorchScript exporter's dump of the value it failed on."""
  return short(error.split(' [Caused by')[0], n)


def error_text(e: BaseException) -> str:
  text = re.sub(r'Please feel free to request support.*?/issues', '', str(e))
  return short(f'{type(e).__name__}: {text}', 600)


class EncodeDecode(torch.nn.Module):
  """``encode_decode`` of an MMSeg segmentor as a module: normalized NCHW in, logits at the
  input size out; the input's traced shape as ``img_shape`` (MMDeploy's segmentor rewrite)."""

  def __init__(self, model):
    super().__init__()
    self.model = model

  def forward(self, x):
    return self.model.encode_decode(x, [dict(img_shape=x.shape[2:])])


@contextlib.contextmanager
def mmdeploy_adaptive_avg_pool():
  """MMDeploy's rewrite of ``F.adaptive_avg_pool2d`` for ONNX (its PPM and adaptive pooling
  rewriters): an output size other than 1 becomes ``F.avg_pool2d`` with kernel = stride =
  floor(input size / output size), fixed at export time."""
  original = F.adaptive_avg_pool2d

  def rewritten(input, output_size):  # pylint: disable=redefined-builtin
    out = torch.nn.modules.utils._pair(output_size)  # pylint: disable=protected-access
    if tuple(int(o) for o in out) == (1, 1):
      return original(input, output_size)
    k = [int(int(s) / int(o)) for s, o in zip(input.shape[2:], out)]
    return F.avg_pool2d(input, kernel_size=k, stride=k, padding=0, ceil_mode=False)

  F.adaptive_avg_pool2d = rewritten
  try:
    yield
  finally:
    F.adaptive_avg_pool2d = original


@contextlib.contextmanager
def output_to(path: str):
  """The process's stdout and stderr (file descriptors 1 and 2, C++ included) into ``path``
  meanwhile: the TorchScript exporter prints its whole graph when it fails (its ONNX log is
  always on), the exception says why."""
  sys.stdout.flush()
  sys.stderr.flush()
  saved = [os.dup(1), os.dup(2)]
  try:
    with open(path, 'w') as f:
      os.dup2(f.fileno(), 1)
      os.dup2(f.fileno(), 2)
      yield
  finally:
    sys.stdout.flush()
    sys.stderr.flush()
    for fd, old in zip((1, 2), saved):
      os.dup2(old, fd)
      os.close(old)


def export_mmseg(mm, size, path: str) -> dict:
  """Writes MMSeg's ONNX of ``mm`` to ``path``: dynamic if the exporter manages, else static at
  ``size``, else static with MMDeploy's adaptive pooling rewrite. Returns the mode (None if
  nothing exported), the error of each failed try, the export's seconds."""
  x = torch.zeros(1, 3, *size)
  wrapper = EncodeDecode(mm).eval()  # export restores the wrapper's mode: eval, not train
  axes = {'input': {0: 'batch', 2: 'height', 3: 'width'},
          'logits': {0: 'batch', 2: 'height', 3: 'width'}}
  tries = [('dynamic', axes, contextlib.nullcontext), ('static', None, contextlib.nullcontext),
           ('static, MMDeploy adaptive_avg_pool2d rewrite', None, mmdeploy_adaptive_avg_pool)]
  errors = {}
  for mode, dynamic_axes, context in tries:
    if mode.startswith('static, ') and 'adaptive_avg_pool2d' not in ' '.join(errors.values()):
      break
    start = time.perf_counter()
    try:
      with context(), warnings.catch_warnings(), torch.no_grad(), output_to(path + '.log'):
        warnings.simplefilter('ignore')
        torch.onnx.export(wrapper, (x,), path, dynamo=False, opset_version=OPSET,
                          input_names=['input'], output_names=['logits'],
                          dynamic_axes=dynamic_axes)
    except Exception as e:  # pylint: disable=broad-except
      errors[mode] = error_text(e)
      print(f'  MMSeg ONNX export, {mode}: {brief(errors[mode])}', flush=True)
      continue
    finally:
      mm.eval()
    return dict(mode=mode, errors=errors, export_s=time.perf_counter() - start)
  return dict(mode=None, errors=errors, export_s=None)


def graph_stats(model: onnx.ModelProto) -> dict:
  """Nodes of the graph as in the file (local functions inlined, subgraphs included): the
  total, the Transposes, the commonest ops; the input's shape and whether H, W are symbolic."""
  if len(model.functions):
    model = onnx.inliner.inline_local_functions(model)

  def walk(graph):
    for node in graph.node:
      yield node
      for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
          yield from walk(a.g)
        elif a.type == onnx.AttributeProto.GRAPHS:
          for g in a.graphs:
            yield from walk(g)

  ops = collections.Counter(n.op_type for n in walk(model.graph))
  dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
  layout_hw = dims[2:4] if len(dims) == 4 and dims[1] == 3 else dims[1:3]  # NCHW or NHWC
  return dict(nodes=sum(ops.values()), transposes=ops.get('Transpose', 0),
              top_ops=dict(ops.most_common(8)), input_shape=[str(d) for d in dims],
              dynamic_hw=all(isinstance(d, str) and d for d in layout_hw))


def session(model) -> ort.InferenceSession:
  """ONNX Runtime on the CPU, default session options; ``model`` a path or serialized bytes."""
  return ort.InferenceSession(model, providers=['CPUExecutionProvider'])


def normalize(config, bgr):
  """MMSeg's data preprocessor on uint8 BGR NHWC: RGB, minus mean, over std (float32)."""
  mean = np.asarray(config.data.mean, np.float32)
  std = np.asarray(config.data.std, np.float32)
  return (bgr[..., ::-1].astype(np.float32) - mean) / std


def torch_logits(mm, x_nhwc) -> np.ndarray:
  """MMSeg's ``encode_decode`` (torch) of the normalized NHWC input, as NHWC."""
  with torch.no_grad():
    return ref.nhwc(mm.encode_decode(ref.nchw(x_nhwc), [dict(img_shape=x_nhwc.shape[1:3])]))


def other_size_check(run, want) -> dict:
  """Runs an ONNX graph at another size: its error, or its logits' rel err against ``want``."""
  try:
    got = run()
  except Exception as e:  # pylint: disable=broad-except
    return dict(ok=False, error=error_text(e))
  if got.shape != want.shape:
    return dict(ok=False, error=f'output shape {list(got.shape)}, want {list(want.shape)}')
  err = ref.rel_err(got, want)
  return dict(ok=err <= SAME, rel_err=err)


def interleave(fns: dict, warmup: int, reps: int) -> dict:
  """Seconds of each of ``fns``' ``reps`` timed runs: ``warmup`` untimed runs of each first,
  then ``reps`` rounds running each once in turn after a short pause (``compare_mmseg.alternate``'s scheme
  for any number of contestants)."""
  for fn in fns.values():
    cm.timed(fn, warmup, 0)
  rounds = [{k: cm.pause_then_time(fn) for k, fn in fns.items()} for _ in range(reps)]
  return {k: np.asarray([r[k] for r in rounds]) for k in fns}


def run_method(method: str, variant: str, size, other_size, warmup: int, reps: int,
               tmp_dir: str, seed: int = 0) -> dict:
  """One method's row: the three contestants timed on the same weights and image, the ONNX
  graphs' statistics and other-size checks, each contestant's rel err against torch."""
  row = dict(method=method, variant=variant)
  config = jconfig.load(f'configs/{method}.py:{variant}')
  mm = ref.randomize(ref.build_mmseg_model(ref.mmseg_config(method, variant).model), seed)
  mm.eval()
  variables = jax.device_put(mmseg_to_jseg(mm.state_dict(), config))
  rng = np.random.default_rng(seed)
  bgr, bgr_other = rng.integers(0, 256, (1, *size, 3), np.uint8), rng.integers(
      0, 256, (1, *other_size, 3), np.uint8)
  x, x_other = normalize(config, bgr), normalize(config, bgr_other)
  want, want_other = torch_logits(mm, x), torch_logits(mm, x_other)
  fns, outs = {}, {}
  seg = build_segmentor(config)

  # MMSeg-ONNX
  path = os.path.join(tmp_dir, f'{method}_{variant}.onnx')
  exp = export_mmseg(mm, size, path)
  row['mmseg_onnx'] = mm_row = dict(mode=exp['mode'], export_errors=exp['errors'],
                                    export_s=exp['export_s'])
  if exp['mode'] is not None:
    mm_row.update(graph_stats(onnx.load(path, load_external_data=False)),
                  file_mb=os.path.getsize(path) / 1e6)
    start = time.perf_counter()
    mm_sess = session(path)
    mm_row['session_s'] = time.perf_counter() - start
    x_nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    fns['mmseg_onnx'] = lambda: outs.__setitem__(
        'mmseg_onnx', mm_sess.run(None, {'input': x_nchw})[0].transpose(0, 2, 3, 1))
    mm_row['other'] = other_size_check(
        lambda: mm_sess.run(None, {'input': np.ascontiguousarray(
            x_other.transpose(0, 3, 1, 2))})[0].transpose(0, 2, 3, 1), want_other)
  # jseg-ONNX
  row['jseg_onnx'] = js_row = {}
  try:
    start = time.perf_counter()
    proto = jexport.export_onnx(config, variables, output='logits', channel_order='bgr')
    js_row['export_s'] = time.perf_counter() - start
    js_row.update(graph_stats(proto))
    data = proto.SerializeToString()
    js_row['file_mb'] = len(data) / 1e6
    start = time.perf_counter()
    js_sess = session(data)
    js_row['session_s'] = time.perf_counter() - start
    name = js_sess.get_inputs()[0].name
    fns['jseg_onnx'] = lambda: outs.__setitem__('jseg_onnx', js_sess.run(None, {name: bgr})[0])
    # against jseg's own forward at that size: what the export is to compute (jseg's float32
    # forward can be further from torch's than 1e-4 where the random weights make OCR's
    # softmax ill-conditioned, as at 385x641 here: float64 agrees to 4e-15)
    jseg_other = np.asarray(jax.jit(seg.apply)(variables, jnp.asarray(x_other)))
    js_row['other'] = other_size_check(lambda: js_sess.run(None, {name: bgr_other})[0],
                                       jseg_other)
    js_row['other']['jit_rel_err_vs_torch'] = ref.rel_err(jseg_other, want_other)
  except Exception as e:  # pylint: disable=broad-except
    js_row['error'] = error_text(e)
    print(f'  jseg ONNX: {js_row["error"]}', flush=True)
  # jseg-jit
  xj = jnp.asarray(x)
  start = time.perf_counter()
  compiled = jax.jit(lambda v, x: seg.apply(v, x)).lower(variables, xj).compile()
  row['jseg_jit'] = dict(compile_s=time.perf_counter() - start,
                         gflops=benchmark.cost(compiled).get('flops', 0.0) / 1e9)
  fns['jseg_jit'] = lambda: outs.__setitem__(
      'jseg_jit', compiled(variables, xj).block_until_ready())

  for k in list(fns):  # the first warm-up run: a contestant that cannot run is reported
    try:
      fns[k]()
    except Exception as e:  # pylint: disable=broad-except
      row[k]['error'] = error_text(e)
      print(f'  {NAMES[k]}: {row[k]["error"]}', flush=True)
      del fns[k]
  times = interleave(fns, max(warmup - 1, 0), reps)
  for k, t in times.items():
    row[k].update(ms_all=(1e3 * t).tolist(), ms_median=1e3 * float(np.median(t)),
                  ms_min=1e3 * float(t.min()), rel_err=ref.rel_err(np.asarray(outs[k]), want))
  row['load'] = cm.load_average()
  med = {k: row[k].get('ms_median') for k in CONTESTANTS}
  mins = {k: row[k].get('ms_min') for k in CONTESTANTS}
  for num, den in (('jseg_onnx', 'mmseg_onnx'), ('jseg_onnx', 'jseg_jit')):
    if med[num] and med[den]:
      row[f'{num}/{den}'] = med[num] / med[den]
      row[f'{num}/{den} (min)'] = mins[num] / mins[den]
  return row


def fmt_ms(c: dict) -> str:
  return f'{c["ms_median"]:.0f} ({c["ms_min"]:.0f})' if 'ms_median' in c else 'n/a'


def fmt_ratio(row, key) -> str:
  return f'**{row[key]:.2f}** ({row[key + " (min)"]:.2f})' if key in row else 'n/a'


def fmt_graph(c: dict) -> str:
  return f'{c["nodes"]} ({c["transposes"]})' if 'nodes' in c else 'n/a'


def fmt_other(c: dict) -> str:
  o = c.get('other')
  if o is None:
    return 'n/a'
  if 'error' in o:
    return 'fails (note below)'
  return f'runs, {"right" if o["ok"] else "WRONG"} (rel err {o["rel_err"]:.1e})'


def fmt_err(c: dict) -> str:
  return f'{c["rel_err"]:.1e}' if 'rel_err' in c else 'n/a'


def mmseg_mode(c: dict) -> str:
  if c.get('mode') is None:
    return 'export failed'
  dyn = '' if 'dynamic_hw' not in c else (' (H, W symbolic)' if c['dynamic_hw'] else
                                          ' (H, W fixed)')
  return c['mode'] + dyn


def jseg_state(c: dict) -> str:
  if 'error' in c:
    return 'failed'
  return 'H, W symbolic' if c.get('dynamic_hw') else 'H, W fixed'


def markdown(rows, args, elapsed_s: float, loads) -> str:
  h, w = args.size
  oh, ow = args.other_size
  lines = [
      markers(args.size)[0],
      f'Measured {datetime.date.today().isoformat()} by `python benchmarks/onnx_export.py '
      f'{" ".join(sys.argv[1:])}` ({elapsed_s / 60:.0f} min).',
      '',
      f'- Machine: {cm.cpu_model()}, {os.cpu_count()} cores; {platform.platform()}; 1-min load '
      f'average {loads[0]} at the start, {loads[1]} at the end',
      f'- onnxruntime {ort.__version__} (CPUExecutionProvider, default session options: all '
      f'graph optimizations, default threads), onnx {onnx.__version__}, torch '
      f'{torch.__version__} (TorchScript exporter, `dynamo=False`, opset {OPSET}), '
      f'mmsegmentation {ref.mmseg.__version__}, jax {jax.__version__} ({jax.default_backend()}); '
      f'GLIBC_TUNABLES={os.environ.get("GLIBC_TUNABLES", "")!r}',
      f'- Batch 1, {h}x{w}, fp32, one random uint8 BGR image and the same random weights for all '
      'three. MMSeg-ONNX: MMSeg\'s `encode_decode` exported by `torch.onnx.export` (the MMDeploy '
      'route), normalized NCHW float in; jseg-ONNX: `jseg.export.export_onnx`, the uint8 NHWC '
      'image in (normalization inside the timed graph); jseg-jit: `jax.jit` of the model on the '
      f'normalized NHWC input. {args.warmup} warm-up + {args.reps} timed runs each, the three '
      'interleaved run by run.',
      '- ms: median (fastest) per image; ratios of the medians (of the fastest). Nodes: the ONNX '
      'file\'s node count (Transpose nodes), before ONNX Runtime\'s optimizations. rel err: max '
      '|x - torch| / max |torch| against MMSeg\'s torch `encode_decode` logits. '
      f'At {oh}x{ow} each graph runs another random image and is checked against the forward '
      'it was exported from at that size (MMSeg-ONNX: torch `encode_decode`; jseg-ONNX: '
      f'jseg-jit): "right" means rel err <= {SAME:g}.',
  ]
  lines += [
      '',
      '| method | config | MMSeg-ONNX ms | jseg-ONNX ms | jseg-jit ms | jseg-ONNX / MMSeg-ONNX '
      '| jseg-ONNX / jseg-jit | load |',
      '|---|---|---:|---:|---:|---:|---:|---:|',
  ]
  for r in rows:
    if 'error' in r:
      lines.append(f'| {r["method"]} | {r["variant"]} | failed: {short(r["error"], 200)} |'
                   + ' |' * 5)
      continue
    lines.append(
        f'| {r["method"]} | {r["variant"]} | {fmt_ms(r["mmseg_onnx"])} '
        f'| {fmt_ms(r["jseg_onnx"])} | {fmt_ms(r["jseg_jit"])} '
        f'| {fmt_ratio(r, "jseg_onnx/mmseg_onnx")} | {fmt_ratio(r, "jseg_onnx/jseg_jit")} '
        f'| {r["load"]} |')
  lines += [
      '',
      f'| method | MMSeg-ONNX export | nodes (Transpose) | at {oh}x{ow} | rel err | jseg-ONNX '
      f'| nodes (Transpose) | at {oh}x{ow} | rel err | jseg-jit rel err |',
      '|---|---|---:|---|---:|---|---:|---|---:|---:|',
  ]
  notes = []
  for r in rows:
    if 'error' in r:
      continue
    m, j = r['mmseg_onnx'], r['jseg_onnx']
    lines.append(
        f'| {r["method"]} | {mmseg_mode(m)} | {fmt_graph(m)} | {fmt_other(m)} | {fmt_err(m)} '
        f'| {jseg_state(j)} | {fmt_graph(j)} | {fmt_other(j)} | {fmt_err(j)} '
        f'| {fmt_err(r["jseg_jit"])} |')
    for mode, err in m.get('export_errors', {}).items():
      notes.append(f'- {r["method"]}: MMSeg-ONNX {mode} export failed: `{brief(err)}`')
    for k in CONTESTANTS:
      if 'error' in r[k]:
        notes.append(f'- {r["method"]}: {NAMES[k]} failed: `{brief(r[k]["error"])}`')
    for k, c in (('MMSeg-ONNX', m), ('jseg-ONNX', j)):
      if c.get('other') and 'error' in c['other']:
        notes.append(f'- {r["method"]}: {k} at {oh}x{ow}: `{brief(c["other"]["error"])}`')
  if notes:
    lines += [''] + notes
  lines.append(markers(args.size)[1])
  return '\n'.join(lines) + '\n'


def write_block(path: str, block: str, marks) -> None:
  """``compare_mmseg.write_doc`` (which replaces the block between ``marks``), except where an
  existing file lacks the block: it goes under its own heading at the end of the section that
  holds compare_mmseg.py's blocks (before the next ``## `` heading), not right after them, where
  their notes follow."""
  if os.path.exists(path):
    with open(path) as f:
      text = f.read()
    if not (marks[0] in text and marks[1] in text):
      ends = list(re.finditer(r'<!-- compare_mmseg\.py [^>]*: end -->', text))
      after = ends[-1].end() if ends else len(text)
      section = re.compile(r'^## ', re.M).search(text, after)
      at = section.start() if section else len(text)
      new = f'### ONNX Runtime on MMSeg\'s and jseg\'s ONNX: `benchmarks/onnx_export.py`\n\n{block}'
      with open(path, 'w') as f:
        f.write(text[:at].rstrip('\n') + '\n\n' + new + ('\n' + text[at:] if text[at:] else ''))
      return
  cm.write_doc(path, block, marks)


def print_row(r: dict) -> None:
  if 'error' in r:
    print(f'{r["method"]} {r["variant"]}: failed: {r["error"]}', flush=True)
    return
  parts = [f'{r["method"]:14s}']
  for k in CONTESTANTS:
    c = r[k]
    if 'ms_median' in c:
      parts.append(f'{NAMES[k]} {c["ms_median"]:.0f} ms (min {c["ms_min"]:.0f}, rel err '
                   f'{c["rel_err"]:.1e})')
    else:
      parts.append(f'{NAMES[k]} n/a')
  for k in ('jseg_onnx/mmseg_onnx', 'jseg_onnx/jseg_jit'):
    if k in r:
      parts.append(f'{k} {r[k]:.2f}')
  print('  '.join(parts) + f'  load {r["load"]}', flush=True)


def main():
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--methods', default=','.join(METHODS),
                 help='comma-separated methods; method:variant picks one config of '
                 'configs/<method>.py (a bare method: compare_mmseg.METHODS\' variant)')
  p.add_argument('--size', default='512x1024', help='input HxW (default 512x1024)')
  p.add_argument('--other_size', default='385x641',
                 help='HxW at which the ONNX graphs are also run (default 385x641)')
  p.add_argument('--reps', type=int, default=5, help='timed runs per contestant')
  p.add_argument('--warmup', type=int, default=2, help='untimed runs per contestant')
  p.add_argument('--doc', default='', help='markdown file whose generated block (between this '
                 'script\'s markers for the size) is replaced; "" for none')
  p.add_argument('--json', default='', help='JSON file of every measurement ("" for none)')
  p.add_argument('--smoke', action='store_true',
                 help=f'quick check: {SMOKE_METHOD} at 64x128 (other size 49x81), 1 warm-up, '
                 '1 rep')
  args = p.parse_args()
  if args.smoke:
    args.methods, args.size, args.other_size = SMOKE_METHOD, '64x128', '49x81'
    args.reps, args.warmup = 1, 1
  args.size, args.other_size = benchmark.parse_size(args.size), benchmark.parse_size(
      args.other_size)
  specs = [m.strip() for m in args.methods.split(',') if m.strip()]
  unknown = {s.split(':')[0] for s in specs if ':' not in s} - set(cm.METHODS)
  if unknown:
    p.error(f'unknown methods {sorted(unknown)}; give method:variant or one of '
            f'{", ".join(cm.METHODS)}')
  start, load_start = time.perf_counter(), cm.load_average()
  rows = []
  with tempfile.TemporaryDirectory(prefix='jseg-onnx-bench-') as tmp:
    for m, v in cm.job_configs('forward', specs):
      print(f'{m} {v}: {args.size[0]}x{args.size[1]}', flush=True)
      try:
        r = run_method(m, v, args.size, args.other_size, args.warmup, args.reps, tmp)
      except Exception as e:  # pylint: disable=broad-except
        r = dict(method=m, variant=v, error=error_text(e))
      print_row(r)
      rows.append(r)
      for f in os.listdir(tmp):
        os.remove(os.path.join(tmp, f))
      gc.collect()
      cm.release_heap()
  elapsed = time.perf_counter() - start
  block = markdown(rows, args, elapsed, (load_start, cm.load_average()))
  print(block)
  print(f'machine: {cm.cpu_model()}, {os.cpu_count()} cores; load average {cm.load_average()}; '
        f'{elapsed:.0f} s')
  if args.doc:
    write_block(args.doc, block, markers(args.size))
    print(f'wrote {args.doc}')
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(dict(date=datetime.datetime.now().isoformat(timespec='seconds'),
                     command=' '.join(sys.argv[1:]), machine=cm.cpu_model(),
                     cores=os.cpu_count(), platform=platform.platform(),
                     onnxruntime=ort.__version__, onnx=onnx.__version__,
                     torch=torch.__version__, jax=jax.__version__,
                     mmseg=ref.mmseg.__version__,
                     glibc_tunables=os.environ.get('GLIBC_TUNABLES', ''),
                     size=list(args.size), other_size=list(args.other_size),
                     warmup=args.warmup, reps=args.reps, elapsed_s=elapsed, rows=rows),
                f, indent=2, default=str)
    print(f'wrote {args.json}')


if __name__ == '__main__':
  malloc_tunables.reexec_with_tunables()
  main()
