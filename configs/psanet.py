"""PSANet (MMSeg ``psanet_<variant>``): bi-directional PSAHead, 2x shrunk attention.

The attention window ``mask_size`` is (97, 97), (66, 66) on ADE20K as in MMSeg.
"""
from jseg import config as jc

VARIANTS = jc.variants(('r50-d8', 'r101-d8'))


def get_config(arg=None):
  c = jc.recipe('psanet', arg, VARIANTS)
  c4, ch, c3, aux_ch = jc.resnet_widths(c.model.backbone)
  c.model.decode_head = jc.head(
      c, 'PSAHead', in_channels=c4, in_index=3, channels=ch,
      mask_size=(66, 66) if c.data.dataset == 'ade20k' else (97, 97),
      psa_type='bi-direction', compact=False, shrink_factor=2, normalization_factor=1.0,
      psa_softmax=True, dropout_ratio=0.1)
  c.model.auxiliary_head = jc.fcn_aux_head(c, c3, aux_ch)
  return c
