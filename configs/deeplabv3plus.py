"""DeepLabV3+ (MMSeg ``deeplabv3plus_<variant>``): separable ASPP + stage-1 decoder."""
from jseg import config as jc

VARIANTS = jc.variants(('r18-d8', 'r50-d8', 'r101-d8', 'r18w16-d8', 'r18b-d8', 'r50b-d8',
                        'r101b-d8'),
                       only={'r18-d8': ('80k_cityscapes',), 'r18w16-d8': ('synthetic',),
                             'r18b-d8': ('80k_cityscapes',), 'r50b-d8': ('80k_cityscapes',),
                             'r101b-d8': ('80k_cityscapes',)}) + list(jc.FP16_VARIANTS)


def get_config(arg=None):
  c = jc.recipe('deeplabv3plus', arg, VARIANTS)
  c4, ch, c3, aux_ch = jc.resnet_widths(c.model.backbone)
  small = c.model.backbone.depth == 18
  c.model.decode_head = jc.head(c, 'DepthwiseSeparableASPPHead', in_channels=c4, in_index=3,
                                channels=ch, dilations=(1, 12, 24, 36),
                                c1_in_channels=c4 // 8,
                                c1_channels=12 if small else 48, dropout_ratio=0.1)
  c.model.auxiliary_head = jc.fcn_aux_head(c, c3, aux_ch)
  return c
