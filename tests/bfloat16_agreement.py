"""Prints ``method jseg_error mmseg_error jseg_agreement mmseg_agreement`` for each of the 13
methods, for an imported MMSeg model (random weights, calibrated BN: ``parity.pair``) in
bfloat16 against the same model in float32, in jseg and, as the reference, in MMSeg under
torch's CPU autocast (bfloat16 convolutions and matmuls, as MMSeg's AmpOptimWrapper runs them):
the logits' relative RMS error and the fraction of pixels predicted as the same class. Run by
test_precision.py with XLA_FLAGS=--xla_allow_excess_precision=false (XLA:CPU would otherwise
keep bfloat16 intermediates in float32)."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import parity  # noqa: E402
from jseg.convert import mmseg_to_jseg  # noqa: E402
from jseg.models import build_segmentor  # noqa: E402

# ResNet-18 variants, R-50 heads on ResNet-18 (parity.on_resnet18), HRNet's smallest width: the
# rules with fewer layers.
CASES = [('fcn', 'r18-d8_512x1024_80k_cityscapes'), ('pspnet', 'r18-d8_512x1024_80k_cityscapes'),
         ('psanet', 'r50-d8_512x1024_80k_cityscapes'),
         ('deeplabv3', 'r18-d8_512x1024_80k_cityscapes'),
         ('deeplabv3plus', 'r18-d8_512x1024_80k_cityscapes'),
         ('upernet', 'r50_512x1024_80k_cityscapes'), ('gcnet', 'r50-d8_512x1024_80k_cityscapes'),
         ('nonlocal_net', 'r50-d8_512x1024_80k_cityscapes'),
         ('ccnet', 'r50-d8_512x1024_80k_cityscapes'), ('danet', 'r50-d8_512x1024_80k_cityscapes'),
         ('ann', 'r50-d8_512x1024_80k_cityscapes'), ('hrnet', 'hr18s_512x1024_80k_cityscapes'),
         ('ocrnet', 'hr18s_512x1024_80k_cityscapes')]


def main():
  images = jnp.asarray(np.random.default_rng(0).standard_normal((1, 97, 131, 3)), jnp.float32)
  torch_images = torch.from_numpy(np.asarray(images)).permute(0, 3, 1, 2)
  meta = [dict(img_shape=images.shape[1:3], ori_shape=images.shape[1:3],
               pad_shape=images.shape[1:3])]
  for method, variant in CASES:
    config, mm = parity.pair(method, variant, resnet18=variant.startswith('r50'))
    variables = mmseg_to_jseg(mm.eval().state_dict(), config)
    logits = []
    for precision in ('float32', 'bfloat16'):
      config.precision = precision
      logits.append(np.asarray(jax.jit(build_segmentor(config).apply)(variables, images),
                               np.float64))
    with torch.no_grad():
      reference = mm.encode_decode(torch_images, meta).double().permute(0, 2, 3, 1).numpy()
      with torch.autocast('cpu', dtype=torch.bfloat16):
        autocast = mm.encode_decode(torch_images, meta).double().permute(0, 2, 3, 1).numpy()
    print(method, _error(logits[1], logits[0]), _error(autocast, reference),
          _agreement(logits[1], logits[0]), _agreement(autocast, reference), flush=True)


def _error(x, reference):
  return float(np.sqrt(np.mean((x - reference) ** 2) / np.mean(reference ** 2)))


def _agreement(x, reference):
  return float(np.mean(x.argmax(-1) == reference.argmax(-1)))


if __name__ == '__main__':
  main()
