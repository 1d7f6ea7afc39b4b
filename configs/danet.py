"""DANet (MMSeg ``danet_<variant>``): DAHead, position (64 channels) and channel attention.

Training adds the ``pam`` and ``cam`` branch losses (weight 1 each) to ``pam_cam``'s.
"""
from jseg import config as jc

VARIANTS = jc.variants(('r50-d8', 'r101-d8'))


def get_config(arg=None):
  c = jc.recipe('danet', arg, VARIANTS)
  c4, ch, c3, aux_ch = jc.resnet_widths(c.model.backbone)
  c.model.decode_head = jc.head(c, 'DAHead', in_channels=c4, in_index=3, channels=ch,
                                pam_channels=64, dropout_ratio=0.1)
  c.model.auxiliary_head = jc.fcn_aux_head(c, c3, aux_ch)
  return c
