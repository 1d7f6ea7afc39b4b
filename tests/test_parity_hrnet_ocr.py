"""HRNetV2 (FCN) and OCRNet (cascade) equal MMSeg: eval logits and training losses."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import mmseg_ref as ref
from jseg import config as jconfig
from jseg.convert import mmseg_to_jseg
from jseg.models import build_segmentor, segmentor_loss
from mmseg.structures import SegDataSample
from mmengine.structures import PixelData

ODD, EVEN = (97, 131), (64, 80)
# Every backbone width with each method; 19 / 150 / 21 classes; hr48 only at the odd size.
CASES = [
    ('hrnet', 'hr18s_512x1024_40k_cityscapes', (ODD, EVEN)),
    ('hrnet', 'hr18_512x512_80k_ade20k', (ODD, EVEN)),
    ('hrnet', 'hr48_512x512_20k_voc12aug', (ODD,)),
    ('ocrnet', 'hr18s_512x512_40k_voc12aug', (ODD, EVEN)),
    ('ocrnet', 'hr48_512x512_160k_ade20k', (ODD,)),
    ('ocrnet', 'r101-d8_512x1024_40k_b8_cityscapes', (ODD, EVEN)),
]


def _heads(cfg):
  heads = cfg.decode_head
  return list(heads) if isinstance(heads, (list, tuple)) else [heads]


def pair(method, variant, seed=0, dropout=None):
  """(jseg config, MMSeg torch model) with the same random weights."""
  config = jconfig.load(f'configs/{method}.py:{variant}')
  mm_cfg = ref.mmseg_config(method, variant).model
  if dropout is not None:  # locked configs still take new values for existing keys
    for head in _heads(config.model) + _heads(mm_cfg):
      head.dropout_ratio = dropout
  return config, ref.randomize(ref.build_mmseg_model(mm_cfg), seed)


@pytest.mark.parametrize('method,variant,sizes', CASES, ids=[f'{m}:{v}' for m, v, _ in CASES])
def test_eval_logits_equal_mmseg(method, variant, sizes):
  config, mm = pair(method, variant)
  mm.eval()
  variables = mmseg_to_jseg(mm.state_dict(), config)
  seg = build_segmentor(config)
  apply = jax.jit(seg.apply)
  rng = np.random.default_rng(0)
  for h, w in sizes:
    x = rng.standard_normal((2, h, w, 3)).astype(np.float32)
    with torch.no_grad():
      want = ref.nhwc(mm.encode_decode(ref.nchw(x), [dict(img_shape=(h, w))] * 2))
    got = np.asarray(apply(variables, jnp.asarray(x)))
    assert got.shape == want.shape == (2, h, w, config.data.num_classes)
    err = ref.rel_err(got, want)
    print(f'{method}_{variant} {h}x{w}: rel err {err:.2e}')
    assert err <= 1e-4, f'{method}_{variant} {h}x{w}: rel err {err:.2e}'


def _data_samples(labels):
  return [SegDataSample(gt_sem_seg=PixelData(data=torch.from_numpy(l[None].astype(np.int64))))
          for l in labels]


TRAIN_CASES = [
    ('hrnet', 'hr18s_512x1024_40k_cityscapes'),
    ('ocrnet', 'hr18s_512x512_80k_ade20k'),
    ('ocrnet', 'r101-d8_512x1024_40k_b8_cityscapes'),
]


@pytest.mark.parametrize('method,variant', TRAIN_CASES, ids=[f'{m}:{v}' for m, v in TRAIN_CASES])
def test_train_losses_equal_mmseg(method, variant):
  """Train mode (batch statistics), dropout off, ignored pixels: every loss term and BN update.

  For the cascade this covers MMSeg's second forward of the FCN stage (its BN
  statistics update twice).
  """
  config, mm = pair(method, variant, dropout=0)
  mm.train()
  variables = mmseg_to_jseg(mm.state_dict(), config)
  rng = np.random.default_rng(1)
  n, h, w = 2, 97, 131
  x = rng.standard_normal((n, h, w, 3)).astype(np.float32)
  labels = rng.integers(0, config.data.num_classes, (n, h, w))
  labels[rng.random((n, h, w)) < 0.2] = 255
  with torch.no_grad():
    want = mm.loss(ref.nchw(x), _data_samples(labels))
  seg = build_segmentor(config)
  outputs, updates = jax.jit(lambda v, x: seg.apply(v, x, train=True, mutable=['batch_stats']))(
      variables, jnp.asarray(x))
  got = segmentor_loss(config.model, outputs, jnp.asarray(labels))
  assert set(got) == set(want)
  # acc_seg: a near-tie argmax may flip a pixel. R-101's train-mode (batch statistics)
  # features differ from float64 by ~4e-4 in MMSeg itself, so allow two.
  one_pixel = 100.0 / np.sum(labels != 255)
  for key in sorted(want):
    if key.endswith('acc_seg'):
      flipped = abs(float(got[key]) - float(want[key])) / one_pixel
      print(f'{method}_{variant} {key}: {flipped:.2f} pixels apart')
      assert flipped <= 2 + 1e-3, f'{key}: {float(got[key])} vs {float(want[key])}'
    else:
      err = ref.rel_err(got[key], want[key].numpy())
      print(f'{method}_{variant} {key}: {float(got[key]):.7g} vs {float(want[key]):.7g}, rel err {err:.2e}')
      assert err <= 1e-4, f'{key}: {float(got[key])} vs {float(want[key])}'
  new = mmseg_to_jseg(mm.state_dict(), config)['batch_stats']
  errs = jax.tree_util.tree_map(lambda a, b: ref.rel_err(a, b), updates['batch_stats'], new)
  assert max(jax.tree_util.tree_leaves(errs)) <= 1e-4
