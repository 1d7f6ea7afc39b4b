"""DANet and ANN equal MMSeg: eval logits and training losses (DANet's three terms + aux)."""
import copy

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

# r50-d8 and r101-d8 of each method; 19 / 150 / 21 classes; both align_corners settings.
CASES = [
    ('danet', 'r50-d8_769x769_40k_cityscapes'),
    ('danet', 'r101-d8_512x512_160k_ade20k'),
    ('danet', 'r50-d8_512x512_20k_voc12aug'),
    ('ann', 'r50-d8_512x1024_80k_cityscapes'),
    ('ann', 'r101-d8_769x769_80k_cityscapes'),
    ('ann', 'r50-d8_512x512_80k_ade20k'),
    ('ann', 'r101-d8_512x512_40k_voc12aug'),
]
SIZES = [(97, 131), (64, 80)]


def pair(method, variant, seed=0, dropout=None):
  """(jseg config, MMSeg torch model) with the same random weights, converted."""
  config = jconfig.load(f'configs/{method}.py:{variant}')
  mm_cfg = ref.mmseg_config(method, variant).model
  if dropout is not None:
    config = copy.deepcopy(config)
    config.unlock()
    for head in (config.model.decode_head, config.model.auxiliary_head):
      head.dropout_ratio = dropout
    mm_cfg.decode_head.dropout_ratio = mm_cfg.auxiliary_head.dropout_ratio = dropout
  model = ref.randomize(ref.build_mmseg_model(mm_cfg), seed)
  if dropout == 0 and method == 'ann':
    # MMSeg's ANNHead calls self.dropout unconditionally; it is None at ratio 0.
    model.decode_head.dropout = torch.nn.Identity()
  return config, model


@pytest.mark.parametrize('method,variant', CASES)
def test_eval_logits_equal_mmseg(method, variant):
  config, mm = pair(method, variant)
  mm.eval()
  variables = mmseg_to_jseg(mm.state_dict(), config)
  seg = build_segmentor(config)
  apply = jax.jit(seg.apply)
  rng = np.random.default_rng(0)
  for h, w in SIZES:
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


@pytest.mark.parametrize('method,variant', [('danet', 'r50-d8_769x769_40k_cityscapes'),
                                            ('ann', 'r50-d8_512x512_20k_voc12aug')])
def test_train_losses_equal_mmseg(method, variant):
  """Train mode (batch statistics), dropout off, ignored pixels: every loss term and BN update."""
  config, mm = pair(method, variant, dropout=0.0)
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
  outputs, updates = seg.apply(variables, jnp.asarray(x), train=True, mutable=['batch_stats'])
  got = segmentor_loss(config.model, outputs, jnp.asarray(labels))
  assert set(got) == set(want)
  if method == 'danet':
    assert {'decode.pam_cam.loss_ce', 'decode.pam.loss_ce', 'decode.cam.loss_ce'} <= set(got)
  one_pixel = 100.0 / np.sum(labels != 255)  # acc_seg: a near-tie argmax may flip a pixel
  for key in want:
    if key.endswith('acc_seg'):
      assert abs(float(got[key]) - float(want[key])) <= 2 * one_pixel, key
    else:
      err = ref.rel_err(got[key], want[key].numpy())
      print(f'{method}_{variant} {key}: rel err {err:.2e}')
      assert err <= 1e-4, f'{key}: {float(got[key])} vs {float(want[key])}'
  # BN running statistics after one training forward (ANN's APNB updates its shared
  # key/query projection BN twice, in both).
  new = mmseg_to_jseg(mm.state_dict(), config)['batch_stats']
  errs = jax.tree_util.tree_map(lambda a, b: ref.rel_err(a, b), updates['batch_stats'], new)
  assert max(jax.tree_util.tree_leaves(errs)) <= 1e-4
