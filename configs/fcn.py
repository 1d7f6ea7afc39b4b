"""FCN (MMSeg ``fcn_<variant>``): FCNHead with two convs and input concat.

``d6_<backbone>-d16`` is FCN-D6 (MMSeg ``fcn-d6_...``): an output-stride-16 ResNet and the
FCN heads' convs at dilation 6.
"""
from jseg import config as jc

PASCAL_CONTEXT = ('pascal_context', 'pascal_context_59')
VARIANTS = (jc.variants(('r18-d8', 'r50-d8', 'r101-d8', 'r18w16-d8', 'r18b-d8', 'r50b-d8',
                         'r101b-d8'),
                        only={'r18-d8': ('80k_cityscapes',), 'r18w16-d8': ('synthetic',),
                              'r18b-d8': ('80k_cityscapes',), 'r50b-d8': ('80k_cityscapes',),
                              'r101b-d8': ('80k_cityscapes',)}) + list(jc.FP16_VARIANTS)
            + jc.variants(('r50-d8', 'r101-d8'), datasets=PASCAL_CONTEXT)
            + ['d6_' + v for v in jc.variants(('r50-d16', 'r101-d16', 'r50b-d16', 'r101b-d16'),
                                              datasets=('cityscapes',),
                                              only={'r50b-d16': ('80k',), 'r101b-d16': ('80k',)})])


def get_config(arg=None):
  c = jc.recipe('fcn', arg, VARIANTS)
  c4, ch, c3, aux_ch = jc.resnet_widths(c.model.backbone)
  head = jc.split_variant(arg or jc.DEFAULT_VARIANT).head
  dilation = dict(dilation=int(head[1:])) if head else {}
  c.model.decode_head = jc.head(c, 'FCNHead', in_channels=c4, in_index=3, channels=ch,
                                num_convs=2, concat_input=True, dropout_ratio=0.1, **dilation)
  c.model.auxiliary_head = jc.fcn_aux_head(c, c3, aux_ch, **dilation)
  return c
