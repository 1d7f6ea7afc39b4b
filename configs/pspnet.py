"""PSPNet (MMSeg ``pspnet_<variant>``): PSPHead, pool scales (1, 2, 3, 6).

Besides the common data sets: Pascal Context (60 / 59 classes), COCO-Stuff 10k / 164k, LoveDA,
Potsdam, Vaihingen, iSAID, and the Cityscapes models tested on Dark Zurich / Nighttime Driving
(``..._dark`` / ``..._night_driving``). ``r50(b)-d32``: every ResNet stage strided (output
stride 32, the d8 dilations kept); ``..._rsb-pretrain_..._adamw_...``: a ResNet-50 (V1b)
from mmcls' rsb-A1 ImageNet weights, trained with AdamW (jseg.config.OPTIMIZERS).
"""
from jseg import config as jc

VARIANTS = (jc.variants(('r18-d8', 'r50-d8', 'r101-d8', 'r18w16-d8', 'r18b-d8', 'r50b-d8',
                         'r101b-d8'),
                        only={'r18-d8': ('80k_cityscapes',), 'r18w16-d8': ('synthetic',),
                              'r18b-d8': ('80k_cityscapes',), 'r50b-d8': ('80k_cityscapes',),
                              'r101b-d8': ('80k_cityscapes',)}) + list(jc.FP16_VARIANTS)
            + jc.variants(('r50-d8', 'r101-d8'), datasets=('pascal_context', 'pascal_context_59',
                                                           'coco-stuff10k', 'coco-stuff164k'))
            + jc.variants(('r18-d8', 'r50-d8', 'r101-d8'),
                          datasets=('loveda', 'potsdam', 'vaihingen', 'isaid'),
                          only={'r101-d8': ('loveda', 'potsdam', 'vaihingen')})
            + jc.variants(('r50-d8', 'r101-d8', 'r101b-d8'), datasets=('dark', 'night_driving'),
                          only={'r101-d8': ('40k',), 'r101b-d8': ('80k',)})
            + jc.variants(('r50-d32', 'r50b-d32'), datasets=('cityscapes',),
                          only={'r50-d32': ('512x1024_80k',), 'r50b-d32': ('512x1024_80k',)})
            + ['r50-d8_rsb-pretrain_512x1024_adamw_80k_cityscapes',
               'r50-d32_rsb-pretrain_512x1024_adamw_80k_cityscapes'])


def get_config(arg=None):
  c = jc.recipe('pspnet', arg, VARIANTS)
  c4, ch, c3, aux_ch = jc.resnet_widths(c.model.backbone)
  c.model.decode_head = jc.head(c, 'PSPHead', in_channels=c4, in_index=3, channels=ch,
                                pool_scales=(1, 2, 3, 6), dropout_ratio=0.1)
  c.model.auxiliary_head = jc.fcn_aux_head(c, c3, aux_ch)
  return c
