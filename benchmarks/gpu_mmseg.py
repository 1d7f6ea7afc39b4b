"""MMSeg's side of benchmarks/gpu.py: its jobs in MMSegmentation 1.2.2 + torch, on the same
device, in a process of their own (``gpu.py --framework=mmseg``).

- ``inference``: MMSeg's fps protocol as ``tools/analysis_tools/benchmark.py`` times it, on
  random inputs as jseg's side: batch 1, the model's ``inference`` (whole or slide, as the
  config's ``test_cfg``) at the test input size, the logits resized to the original size and
  argmax'd, ``torch.cuda.synchronize()`` after each image.
- ``train``: ``model.train_step`` with the config's optimizer (``OptimWrapper``), batch 2 per
  device of random uint8 crops and labels; mixed precision is MMSeg's ``AmpOptimWrapper``
  (float16 autocast, dynamic loss scale), the fp16 rows' recipe.
- ``memory``: one such train step's peak (``torch.cuda.max_memory_allocated``): what jseg's
  ``memory`` job gives from XLA's analysis of the compiled step, measured.

float32 is true float32 on both sides: TF32 off in torch, ``precision=HIGHEST`` in jseg.
Needs the tests' reference (``pip install -e '.[test]'``: mmseg, mmengine, mmcv-lite, and
``tests/mmseg_ref.py``'s stand-ins for ``mmcv.ops``).
"""
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                'tests'))
import mmseg_ref as ref  # noqa: E402  (installs the mmcv.ops stand-in before mmseg)
import parity  # noqa: E402
from mmengine.config import ConfigDict  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402

from jseg import benchmark  # noqa: E402
from jseg import config as jconfig  # noqa: E402

# jseg's precision -> MMSeg's: float32 as it is, jseg's bfloat16 against MMSeg's float16 AMP.
MIXED = {'float32': None, 'bfloat16': torch.float16}


def device() -> torch.device:
  return torch.device('cuda' if torch.cuda.is_available() else 'cpu')


def description() -> str:
  if torch.cuda.is_available():
    return (f'{torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA '
            f'{torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}')
  return f'CPU, torch {torch.__version__}'


def _sync():
  if torch.cuda.is_available():
    torch.cuda.synchronize()


def _peak_and_reset():
  if not torch.cuda.is_available():
    return None
  peak = torch.cuda.max_memory_allocated()
  torch.cuda.reset_peak_memory_stats()
  return peak


def _timed(fn, num: int, warmup: int) -> np.ndarray:
  times = []
  for i in range(num):
    start = time.perf_counter()
    fn(i)
    _sync()
    if i >= warmup:
      times.append(time.perf_counter() - start)
  return np.asarray(times)


def inference(config, method: str, variant: str, precision: str, num_images: int,
              original_size=None, seed: int = 0) -> dict:
  """MMSeg's fps (batch 1) of ``configs/METHOD.py:VARIANT``, at jseg's input and output sizes
  (``config`` may shrink them for a smoke run)."""
  dev = device()
  mm_cfg = ref.mmseg_config(method, variant)
  model = ref.random_mmseg_model(mm_cfg.model, seed).to(dev).eval()
  out_size = benchmark.original_image_size(config, original_size)
  in_size = benchmark.test_input_size(config, out_size)
  model.test_cfg = ConfigDict(mode=config.test.mode, crop_size=tuple(config.test.crop_size),
                              stride=tuple(config.test.stride))
  metas = [dict(ori_shape=tuple(out_size), img_shape=tuple(in_size), pad_shape=tuple(in_size))]
  g = torch.Generator().manual_seed(seed + 1)
  images = [torch.randn((1, 3, *in_size), generator=g).to(dev) for _ in range(2)]
  mixed = MIXED[precision]

  @torch.no_grad()
  def segment(i):
    with torch.autocast(dev.type, dtype=mixed, enabled=mixed is not None):
      logits = model.inference(images[i % 2], metas)
    logits = torch.nn.functional.interpolate(logits.float(), size=tuple(out_size),
                                             mode='bilinear', align_corners=False)
    return logits.argmax(1)

  _peak_and_reset()
  times = _timed(segment, num_images, benchmark.WARMUP)
  fps = len(times) / times.sum()
  return dict(input_size=list(in_size), output_size=list(out_size), num_images=num_images,
              warmup=benchmark.WARMUP, precision=precision, fps=fps, ms_per_img=1e3 / fps,
              ms_per_img_median=1e3 * float(np.median(times)),
              peak_memory_bytes=_peak_and_reset())


def train(config, method: str, variant: str, precision: str, batch: int, steps: int,
          warmup: int, seed: int = 0) -> dict:
  """MMSeg's ``train_step`` time and peak memory at ``batch`` and jseg's crop."""
  dev = device()
  _, model = parity.pair(method, variant, seed)
  mm_cfg = ref.mmseg_config(method, variant)
  h, w = config.data.crop_size
  model.data_preprocessor = ref.MODELS.build(dict(mm_cfg.model.data_preprocessor, size=(h, w)))
  model = model.to(dev).train()
  optim = {k: v for k, v in mm_cfg.optim_wrapper.items() if k not in ('loss_scale', 'dtype')}
  optim['type'] = 'OptimWrapper'  # the fp16 rows' AmpOptimWrapper only where asked:
  if MIXED[precision] is not None:
    optim.update(type='AmpOptimWrapper', dtype='float16', loss_scale='dynamic')
  optim_wrapper = build_optim_wrapper(model, optim)
  rng = np.random.default_rng(seed)
  bgr = rng.integers(0, 256, (batch, h, w, 3), np.uint8)  # MMSeg's loader gives uint8 BGR
  labels = parity.random_labels(rng, batch, h, w, config.data.num_classes)
  # On the host, as MMSeg's loader gives them: its data preprocessor moves them.
  data = dict(inputs=[torch.from_numpy(np.ascontiguousarray(i.transpose(2, 0, 1))) for i in bgr],
              data_samples=parity.data_samples(labels))
  _peak_and_reset()
  times = _timed(lambda _: model.train_step(data, optim_wrapper), warmup + steps, warmup)
  per_iter = float(times.sum() / len(times))
  return dict(batch_size=batch, crop_size=[h, w], steps=steps, warmup=warmup, precision=precision,
              img_per_s=batch / per_iter, ms_per_iter=1e3 * per_iter,
              peak_memory_bytes=_peak_and_reset())


def run_job(kind, method, variant, precision, remat, smoke: bool) -> dict:
  """gpu.py's job ``kind`` in MMSeg (``remat`` is jseg's only: MMSeg's row has none)."""
  del remat
  torch.backends.cuda.matmul.allow_tf32 = False  # true float32, as jseg's HIGHEST
  torch.backends.cudnn.allow_tf32 = False
  torch.backends.cudnn.benchmark = False
  config = jconfig.load(f'configs/{method}.py:{variant}')
  if smoke and not torch.cuda.is_available():
    precision = 'float32'  # MMSeg's AMP needs a GPU: the CPU check runs the path in float32
  if smoke:
    config.data.crop_size = (64, 128)
    config.data.img_scale = (128, 64)
  if kind == 'inference':
    return inference(config, method, variant, precision, num_images=8 if smoke else 200,
                     original_size=(64, 128) if smoke else None)
  if kind == 'memory':
    return train(config, method, variant, precision, batch=2, steps=1, warmup=0)
  return train(config, method, variant, precision, batch=2, steps=1 if smoke else 10,
               warmup=1 if smoke else 3)
