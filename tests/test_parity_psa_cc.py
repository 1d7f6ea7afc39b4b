"""PSANet and CCNet equal MMSeg: PSAMask, the heads' options, eval logits and training losses."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from jax.extend.core import jaxprs_in_params

import mmseg_ref as ref
import parity
from psamask_ref import psa_mask as ref_psa_mask, psa_mask_indexed as ref_psa_mask_indexed
from jseg.models import build_segmentor
from jseg.models.heads import CCHead, PSAHead
from jseg.models.heads.cc import CrissCrossAttention
from jseg.models.heads.psa import psa_mask

# r50 and r101 of each method; 19 / 150 / 21 classes; align_corners False and True (769x769);
# PSANet's mask (97, 97) and ADE20K's (66, 66).
CASES = [
    ('psanet', 'r50-d8_512x1024_40k_cityscapes'),
    ('psanet', 'r101-d8_769x769_80k_cityscapes'),
    ('psanet', 'r50-d8_512x512_80k_ade20k'),
    ('psanet', 'r101-d8_512x512_20k_voc12aug'),
    ('ccnet', 'r50-d8_769x769_40k_cityscapes'),
    ('ccnet', 'r101-d8_512x512_160k_ade20k'),
    ('ccnet', 'r50-d8_512x512_40k_voc12aug'),
]
# Stride-8 features 13x17 (both odd: PSANet shrinks to 7x9 with align_corners=True),
# 8x10 (even: 4x5, align_corners=False) and, for PSANet, 9x10 (mixed: floor to 4x5).
SIZES = {'ccnet': parity.SIZES, 'psanet': parity.SIZES + ((72, 80),)}


@pytest.mark.parametrize('mask_size,feat', [((5, 5), (6, 8)), ((7, 9), (7, 9)),
                                            ((4, 6), (12, 5)), ((6, 5), (3, 10)),
                                            ((97, 97), (7, 9)), ((3, 3), (1, 1))])
@pytest.mark.parametrize('psa_type', ['collect', 'distribute'])
def test_psa_mask_equals_mmcv_kernel(psa_type, mask_size, feat):
  """jseg's psa_mask, and the reference MMSeg's indexed stand-in (forward and gradient), equal
  the transcribed kernel."""
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, *feat, mask_size[0] * mask_size[1])).astype(np.float32)
  kind = 0 if psa_type == 'collect' else 1
  want = ref_psa_mask(ref.nchw(x), kind, mask_size)
  got = np.asarray(jax.jit(psa_mask, static_argnums=(1, 2))(jnp.asarray(x), psa_type, mask_size))
  np.testing.assert_array_equal(got, ref.nhwc(want))
  x_loop, x_indexed = (ref.nchw(x).requires_grad_() for _ in range(2))
  weights = torch.from_numpy(rng.standard_normal(want.shape).astype(np.float32))
  indexed = ref_psa_mask_indexed(x_indexed, kind, mask_size)
  np.testing.assert_array_equal(indexed.detach().numpy(), want.numpy())
  (ref_psa_mask(x_loop, kind, mask_size) * weights).sum().backward()
  (indexed * weights).sum().backward()
  np.testing.assert_array_equal(x_indexed.grad.numpy(), x_loop.grad.numpy())


def _primitives(jaxpr):
  for eqn in jaxpr.eqns:
    yield eqn.primitive.name
    for sub in jaxprs_in_params(eqn.params):
      yield from _primitives(sub)


@pytest.mark.parametrize('psa_type', ['collect', 'distribute'])
def test_psa_mask_exported_for_symbolic_sizes_equals_mmcv_kernel(psa_type):
  """psa_mask under jax.export's symbolic sizes (its other windowing), for windows smaller and
  larger than the map, equals the transcribed kernel; and holds no gather, whose indices an
  ONNX export would store as (H * W)^2 x 4 integers."""
  rng = np.random.default_rng(1)
  kind = 0 if psa_type == 'collect' else 1
  for mask_size in [(5, 7), (97, 97)]:
    channels = mask_size[0] * mask_size[1]
    spec = jax.ShapeDtypeStruct((*jax.export.symbolic_shape('b, h, w'), channels), jnp.float32)
    fn = jax.jit(lambda x: psa_mask(x, psa_type, mask_size))
    assert 'gather' not in set(_primitives(jax.make_jaxpr(fn)(spec).jaxpr))
    exported = jax.export.export(fn)(spec)
    for feat in [(6, 8), (9, 4)]:
      x = rng.standard_normal((2, *feat, channels)).astype(np.float32)
      want = ref_psa_mask(ref.nchw(x), kind, mask_size)
      np.testing.assert_array_equal(np.asarray(exported.call(x)), ref.nhwc(want),
                                    err_msg=str((mask_size, feat)))


HEAD_OPTIONS = [
    # psa_type, compact, shrink_factor, normalization_factor, psa_softmax, mask, feature
    ('bi-direction', False, 2, 1.0, True, (5, 5), (11, 13)),  # window smaller than the map
    ('bi-direction', False, 2, None, False, (7, 7), (12, 10)),
    ('collect', False, 1, 1.0, True, (5, 7), (9, 8)),
    ('distribute', False, 2, 1.0, True, (3, 5), (12, 9)),
    ('bi-direction', True, 2, 1.0, True, (6, 5), (12, 10)),  # compact: mask == shrunk map
    ('collect', True, 2, 1.0, True, (6, 5), (12, 10)),
    ('distribute', True, 1, 1.0, True, (5, 6), (5, 6)),
]


@pytest.mark.parametrize('psa_type,compact,shrink,norm,softmax,mask,feat', HEAD_OPTIONS)
@pytest.mark.parametrize('align_corners', [False, True])
def test_psa_head_options_equal_mmseg(psa_type, compact, shrink, norm, softmax, mask, feat,
                                      align_corners):
  """Every PSAHead option on a bare head, also with mask windows that leave the map."""
  kw = dict(in_channels=16, channels=8, num_classes=5, mask_size=mask, psa_type=psa_type,
            compact=compact, shrink_factor=shrink, normalization_factor=norm,
            psa_softmax=softmax, dropout_ratio=0.1, align_corners=align_corners)
  mm = ref.randomize(ref.MODELS.build(dict(type='PSAHead', norm_cfg=dict(type='BN'),
                                           loss_decode=dict(type='CrossEntropyLoss'), **kw)))
  mm.eval()
  kw.pop('in_channels')
  head = PSAHead(**kw)
  x = np.random.default_rng(1).standard_normal((2, *feat, 16)).astype(np.float32)
  variables = parity.module_variables(head, mm, [jnp.asarray(x)])
  with torch.no_grad():
    want = ref.nhwc(mm([ref.nchw(x)]))
  got = np.asarray(head.apply(variables, [jnp.asarray(x)]))
  assert ref.rel_err(got, want) <= 1e-5


@pytest.mark.parametrize('hw', [(1, 5), (7, 9), (8, 6)])
def test_criss_cross_attention_equals_mmcv(hw):
  mm = ref.randomize(ref.mmcv.ops.CrissCrossAttention(16), seed=2).eval()
  cca = CrissCrossAttention()
  x = np.random.default_rng(3).standard_normal((2, *hw, 16)).astype(np.float32)
  variables = parity.module_variables(cca, mm, jnp.asarray(x))
  assert float(variables['params']['gamma']['scalar']) != 0
  with torch.no_grad():
    want = ref.nhwc(mm(ref.nchw(x)))
  got = np.asarray(cca.apply(variables, jnp.asarray(x)))
  assert ref.rel_err(got, want) <= 1e-5


@pytest.mark.parametrize('method,variant', CASES)
def test_eval_logits_equal_mmseg(method, variant):
  config, mm = parity.pair(method, variant)
  assert isinstance(build_segmentor(config).decode_head, PSAHead if method == 'psanet' else CCHead)
  parity.assert_eval_logits_equal(config, mm, SIZES[method])


@pytest.mark.parametrize('method,variant', [('psanet', 'r50-d8_769x769_40k_cityscapes'),
                                            ('ccnet', 'r50-d8_512x1024_40k_cityscapes')])
def test_train_losses_equal_mmseg(method, variant):
  """Every loss term and the BN updates, dropout off; the second image all ignored."""
  parity.assert_train_losses_equal(*parity.pair(method, variant, dropout=False), all_ignored=(1,))
