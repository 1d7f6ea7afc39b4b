"""NonLocal (MMSeg ``nonlocal_<variant>``): NLHead, an embedded-Gaussian NonLocal2d block."""
from jseg import config as jc

VARIANTS = jc.variants(('r50-d8', 'r101-d8'))


def get_config(arg=None):
  c = jc.recipe('nonlocal', arg, VARIANTS)
  c4, ch, c3, aux_ch = jc.resnet_widths(c.model.backbone)
  c.model.decode_head = jc.head(c, 'NLHead', in_channels=c4, in_index=3, channels=ch,
                                reduction=2, use_scale=True, mode='embedded_gaussian',
                                dropout_ratio=0.1)
  c.model.auxiliary_head = jc.fcn_aux_head(c, c3, aux_ch)
  return c
