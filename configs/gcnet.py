"""GCNet (MMSeg ``gcnet_<variant>``): GCHead, a ContextBlock (ratio 1/4, attention pooling)."""
from jseg import config as jc

VARIANTS = jc.variants(('r50-d8', 'r101-d8'))


def get_config(arg=None):
  c = jc.recipe('gcnet', arg, VARIANTS)
  c4, ch, c3, aux_ch = jc.resnet_widths(c.model.backbone)
  c.model.decode_head = jc.head(c, 'GCHead', in_channels=c4, in_index=3, channels=ch,
                                ratio=1 / 4, pooling_type='att', fusion_types=('channel_add',),
                                dropout_ratio=0.1)
  c.model.auxiliary_head = jc.fcn_aux_head(c, c3, aux_ch)
  return c
