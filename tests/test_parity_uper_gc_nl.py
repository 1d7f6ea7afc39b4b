"""UperNet / GCNet / NonLocal equal MMSeg: eval logits, training losses, mmcv's attention blocks."""
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import mmseg_ref as ref
import parity
from jseg.models.heads.gc import ContextBlock
from jseg.models.heads.nl import NonLocal2d
from mmcv.cnn import ContextBlock as MMContextBlock
from mmcv.cnn import NonLocal2d as MMNonLocal2d

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


@pytest.mark.parametrize('method,variant', CASES)
def test_eval_logits_equal_mmseg(method, variant):
  parity.assert_eval_logits_equal(*parity.pair(method, variant))


@pytest.mark.parametrize('method,variant', [('upernet', 'r18_512x512_80k_ade20k'),
                                            ('gcnet', 'r50-d8_512x1024_40k_cityscapes'),
                                            ('nonlocal_net', 'r50-d8_512x512_20k_voc12aug')])
def test_train_losses_equal_mmseg(method, variant):
  """Every loss term and the BN updates, dropout off."""
  parity.assert_train_losses_equal(*parity.pair(method, variant, dropout=False))


@pytest.mark.parametrize('kwargs', [dict(pooling_type='att', fusion_types=('channel_add',)),
                                    dict(pooling_type='avg', fusion_types=('channel_mul',)),
                                    dict(pooling_type='att',
                                         fusion_types=('channel_add', 'channel_mul'))])
def test_context_block_equals_mmcv(kwargs):
  x = np.random.default_rng(2).standard_normal((2, 9, 13, 16)).astype(np.float32)
  mm = ref.randomize(MMContextBlock(16, ratio=1 / 4, **kwargs), seed=3).eval()
  block = ContextBlock(ratio=1 / 4, **kwargs)
  got = block.apply(parity.module_variables(block, mm, jnp.asarray(x), reshape=True),
                    jnp.asarray(x))
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
  got = block.apply(parity.module_variables(block, mm, jnp.asarray(x), reshape=True),
                    jnp.asarray(x))
  with torch.no_grad():
    want = ref.nhwc(mm(ref.nchw(x)))
  assert ref.rel_err(got - x, want - x) <= 1e-5  # the block's own term, not the identity
