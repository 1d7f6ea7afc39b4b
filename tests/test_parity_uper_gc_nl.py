"""UperNet / GCNet / NonLocal equal MMSeg: eval logits, training losses, mmcv's attention blocks."""
import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import mmseg_ref as ref
from jseg.convert import mmseg_key, mmseg_to_jseg
from jseg.models import build_segmentor, segmentor_loss
from jseg.models.heads.gc import ContextBlock
from jseg.models.heads.nl import NonLocal2d
from mmcv.cnn import ContextBlock as MMContextBlock
from mmcv.cnn import NonLocal2d as MMNonLocal2d
from test_parity_classic import _data_samples, _labels, pair

# Each method with each of its backbones; both align_corners settings; 19 / 150 / 21 classes.
CASES = [
    ('upernet', 'r18_512x1024_80k_cityscapes'),
    ('upernet', 'r50_769x769_80k_cityscapes'),
    ('upernet', 'r101_512x512_20k_voc12aug'),
    ('gcnet', 'r50-d8_769x769_40k_cityscapes'),
    ('gcnet', 'r101-d8_512x512_80k_ade20k'),
    ('nonlocal_net', 'r50-d8_512x512_40k_voc12aug'),
    ('nonlocal_net', 'r101-d8_769x769_80k_cityscapes'),
]
SIZES = [(97, 131), (64, 80)]


def _apply_eval(config):
  seg = build_segmentor(config)
  return jax.jit(lambda v, x: seg.apply(v, x))


@pytest.mark.parametrize('method,variant', CASES)
def test_eval_logits_equal_mmseg(method, variant):
  config, mm = pair(method, variant)
  mm.eval()
  variables = mmseg_to_jseg(mm.state_dict(), config)
  apply = _apply_eval(config)
  rng = np.random.default_rng(0)
  for h, w in SIZES:
    x = rng.standard_normal((2, h, w, 3)).astype(np.float32)
    with torch.no_grad():
      want = ref.nhwc(mm.encode_decode(ref.nchw(x), [dict(img_shape=(h, w))] * 2))
    got = np.asarray(apply(variables, jnp.asarray(x)))
    assert got.shape == want.shape == (2, h, w, config.data.num_classes)
    err = ref.rel_err(got, want)
    assert err <= 1e-4, f'{method}_{variant} {h}x{w}: rel err {err:.2e}'


@pytest.mark.parametrize('method,variant', [('upernet', 'r18_512x512_80k_ade20k'),
                                            ('gcnet', 'r50-d8_512x1024_40k_cityscapes'),
                                            ('nonlocal_net', 'r50-d8_512x512_20k_voc12aug')])
def test_train_losses_equal_mmseg(method, variant):
  """Train mode (batch statistics), dropout off, ignored pixels: every loss term and BN update."""
  config, mm = pair(method, variant, dropout=0.0)
  mm.train()
  variables = mmseg_to_jseg(mm.state_dict(), config)
  rng = np.random.default_rng(1)
  n, h, w = 2, 97, 131
  x = rng.standard_normal((n, h, w, 3)).astype(np.float32)
  labels = _labels(rng, n, h, w, config.data.num_classes)
  with torch.no_grad():
    want = mm.loss(ref.nchw(x), _data_samples(labels))
  seg = build_segmentor(config)
  outputs, updates = jax.jit(lambda v, x: seg.apply(v, x, train=True, mutable=['batch_stats']))(
      variables, jnp.asarray(x))
  got = segmentor_loss(config.model, outputs, jnp.asarray(labels))
  assert set(got) == set(want)
  one_pixel = 100.0 / np.sum(labels != 255)  # acc_seg: a near-tie argmax may flip a pixel
  for key in want:
    if key.endswith('acc_seg'):
      assert abs(float(got[key]) - float(want[key])) <= 2 * one_pixel, key
    else:
      err = ref.rel_err(got[key], want[key].numpy())
      assert err <= 1e-4, f'{key}: {float(got[key])} vs {float(want[key])}'
  new = mmseg_to_jseg(mm.state_dict(), config)['batch_stats']
  errs = jax.tree_util.tree_map(lambda a, b: ref.rel_err(a, b), updates['batch_stats'], new)
  assert max(jax.tree_util.tree_leaves(errs)) <= 1e-4


def _block_variables(module, torch_module, x):
  """jseg variables of a standalone block from its mmcv twin's state_dict (MMSeg key rules)."""
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), x))
  sd = {k: v.numpy() for k, v in torch_module.state_dict().items()
        if not k.endswith('num_batches_tracked')}
  flat = {}
  for path, leaf in flax.traverse_util.flatten_dict(flax.core.unfreeze(shapes)).items():
    value = sd.pop(mmseg_key(path))
    value = value.transpose(2, 3, 1, 0) if path[-1] == 'kernel' else value.reshape(leaf.shape)
    assert value.shape == leaf.shape, path
    flat[path] = jnp.asarray(value)
  assert not sd, f'unconverted: {sorted(sd)}'
  return flax.traverse_util.unflatten_dict(flat)


@pytest.mark.parametrize('kwargs', [dict(pooling_type='att', fusion_types=('channel_add',)),
                                    dict(pooling_type='avg', fusion_types=('channel_mul',)),
                                    dict(pooling_type='att',
                                         fusion_types=('channel_add', 'channel_mul'))])
def test_context_block_equals_mmcv(kwargs):
  x = np.random.default_rng(2).standard_normal((2, 9, 13, 16)).astype(np.float32)
  mm = ref.randomize(MMContextBlock(16, ratio=1 / 4, **kwargs), seed=3).eval()
  block = ContextBlock(ratio=1 / 4, **kwargs)
  got = block.apply(_block_variables(block, mm, jnp.asarray(x)), jnp.asarray(x))
  with torch.no_grad():
    want = ref.nhwc(mm(ref.nchw(x)))
  assert ref.rel_err(got - x, want - x) <= 1e-5  # the block's own term, not the identity


@pytest.mark.parametrize('mode,use_scale', [('embedded_gaussian', True),
                                            ('embedded_gaussian', False), ('gaussian', True),
                                            ('dot_product', True), ('concatenation', True)])
def test_non_local_equals_mmcv(mode, use_scale):
  x = np.random.default_rng(4).standard_normal((2, 9, 13, 16)).astype(np.float32)
  mm = MMNonLocal2d(16, reduction=2, use_scale=use_scale, mode=mode, norm_cfg=dict(type='BN'))
  mm = ref.randomize(mm, seed=5).eval()
  block = NonLocal2d(reduction=2, use_scale=use_scale, mode=mode)
  got = block.apply(_block_variables(block, mm, jnp.asarray(x)), jnp.asarray(x))
  with torch.no_grad():
    want = ref.nhwc(mm(ref.nchw(x)))
  assert ref.rel_err(got - x, want - x) <= 1e-5  # the block's own term, not the identity
