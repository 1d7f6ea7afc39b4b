"""DeepLabV3+ (MMSeg ``deeplabv3plus_<variant>``): separable ASPP + stage-1 decoder.

``r101-d16-mg124`` is the output-stride-16 multi-grid variant: ASPP dilations
(1, 6, 12, 18) and OHEM pixel sampling (100k pixels per image), as DeepLabV3's.
"""
from jseg import config as jc

# v0.x's DeepLabV3+ Potsdam names lack the 4x4 of its Vaihingen / iSAID ones.
_NO_4X4 = {'potsdam': '{backbone}_{crop}_{schedule}_{dataset}'}
VARIANTS = (jc.variants(('r18-d8', 'r50-d8', 'r101-d8', 'r101-d16-mg124', 'r18w16-d8',
                         'r18b-d8', 'r50b-d8', 'r101b-d8'),
                        only={'r18-d8': ('80k_cityscapes',), 'r18w16-d8': ('synthetic',),
                              'r101-d16-mg124': ('512x1024_40k_cityscapes',
                                                 '512x1024_80k_cityscapes'),
                              'r18b-d8': ('80k_cityscapes',), 'r50b-d8': ('80k_cityscapes',),
                              'r101b-d8': ('80k_cityscapes',)}) + list(jc.FP16_VARIANTS)
            + jc.variants(('r50-d8', 'r101-d8'), datasets=('pascal_context', 'pascal_context_59'))
            + jc.variants(('r18-d8', 'r50-d8', 'r101-d8'),
                          datasets=('loveda', 'potsdam', 'vaihingen', 'isaid'), names=_NO_4X4,
                          only={'r101-d8': ('loveda', 'potsdam', 'vaihingen')})
            + jc.variants(('r50-d8',), datasets=('mapillary_v1_65',)))


def get_config(arg=None):
  c = jc.recipe('deeplabv3plus', arg, VARIANTS)
  c4, ch, c3, aux_ch = jc.resnet_widths(c.model.backbone)
  small = c.model.backbone.depth == 18
  d16 = c.model.backbone.multi_grid is not None
  c.model.decode_head = jc.head(c, 'DepthwiseSeparableASPPHead', in_channels=c4, in_index=3,
                                channels=ch, dilations=(1, 6, 12, 18) if d16 else (1, 12, 24, 36),
                                c1_in_channels=c4 // 8,
                                c1_channels=12 if small else 48, dropout_ratio=0.1)
  if d16:
    c.model.decode_head.sampler = dict(type='OHEMPixelSampler', thresh=None, min_kept=100000)
  c.model.auxiliary_head = jc.fcn_aux_head(c, c3, aux_ch)
  return c
