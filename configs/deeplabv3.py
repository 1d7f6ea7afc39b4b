"""DeepLabV3 (MMSeg ``deeplabv3_<variant>``): ASPPHead, dilations (1, 12, 24, 36).

``r101-d16-mg124`` is the output-stride-16 multi-grid variant: ASPP dilations
(1, 6, 12, 18) and OHEM pixel sampling (100k pixels per image).
"""
from jseg import config as jc

VARIANTS = (jc.variants(('r18-d8', 'r50-d8', 'r101-d8', 'r101-d16-mg124', 'r18w16-d8',
                         'r18b-d8', 'r50b-d8', 'r101b-d8'),
                        only={'r18-d8': ('80k_cityscapes',), 'r18w16-d8': ('synthetic',),
                              'r101-d16-mg124': ('512x1024_40k_cityscapes',
                                                 '512x1024_80k_cityscapes'),
                              'r18b-d8': ('80k_cityscapes',), 'r50b-d8': ('80k_cityscapes',),
                              'r101b-d8': ('80k_cityscapes',)}) + list(jc.FP16_VARIANTS)
            + jc.variants(('r50-d8', 'r101-d8'), datasets=('pascal_context', 'pascal_context_59',
                                                           'coco-stuff10k', 'coco-stuff164k')))


# MMSeg's published weights of these variants (jseg.zoo): the DATE_TIME-HASH of the checkpoint's
# file name, or its whole URL where the file is not named after the variant.
WEIGHTS = {
    'r18-d8_512x1024_80k_cityscapes': '20201225_021506-23dffbe2',
    'r18-d8_769x769_80k_cityscapes': '20201225_021506-6452126a',
    'r50-d8_512x1024_40k_cityscapes': '20200605_022449-acadc2f8',
    'r50-d8_512x1024_80k_cityscapes': '20200606_113404-b92cfdd4',
    'r50-d8_769x769_40k_cityscapes': '20200606_113723-7eda553c',
    'r50-d8_769x769_80k_cityscapes': '20200606_221338-788d6228',
    'r50-d8_512x512_80k_ade20k': '20200614_185028-0bb3f844',
    'r50-d8_512x512_160k_ade20k': '20200615_123227-5d0ee427',
    'r50-d8_512x512_20k_voc12aug': '20200617_010906-596905ef',
    'r50-d8_512x512_40k_voc12aug': '20200613_161546-2ae96e7e',
    'r101-d8_512x1024_40k_cityscapes': '20200605_012241-7fd3f799',
    'r101-d8_512x1024_80k_cityscapes': '20200606_113503-9e428899',
    'r101-d8_769x769_40k_cityscapes': '20200606_113809-c64f889f',
    'r101-d8_769x769_80k_cityscapes': '20200607_013353-60e95418',
    'r101-d8_512x512_80k_ade20k': '20200615_021256-d89c7fa4',
    'r101-d8_512x512_160k_ade20k': '20200615_105816-b1f72b3b',
    'r101-d8_512x512_20k_voc12aug': '20200617_010932-8d13832f',
    'r101-d8_512x512_40k_voc12aug': '20200613_161432-0017d784',
    'r101-d16-mg124_512x1024_40k_cityscapes': '20200908_005644-67b0c992',
    'r101-d16-mg124_512x1024_80k_cityscapes': '20200908_005644-57bb8425',
    'r18b-d8_512x1024_80k_cityscapes': '20201225_094144-46040cef',
    'r18b-d8_769x769_80k_cityscapes': '20201225_094144-fdc985d9',
    'r50b-d8_512x1024_80k_cityscapes': '20201225_155148-ec368954',
    'r50b-d8_769x769_80k_cityscapes': '20201225_155404-87fb0cf4',
    'r101b-d8_512x1024_80k_cityscapes': '20201226_171821-8fd49503',
    'r101b-d8_769x769_80k_cityscapes': '20201226_190843-9142ee57',
    'r101-d8_512x1024_80k_fp16_cityscapes':
        ('https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3/deeplabv3_r101-d8_fp16_512x1024_80k_cityscapes/'
         'deeplabv3_r101-d8_fp16_512x1024_80k_cityscapes_20200717_230920-774d9cec.pth'),
    'r50-d8_512x512_4x4_20k_coco-stuff10k': '20210821_043025-b35f789d',
    'r50-d8_512x512_4x4_40k_coco-stuff10k': '20210821_043305-dc76f3ff',
    'r50-d8_512x512_4x4_80k_coco-stuff164k': '20210709_163016-88675c24',
    'r50-d8_512x512_4x4_160k_coco-stuff164k': '20210709_163016-49f2812b',
    'r50-d8_512x512_4x4_320k_coco-stuff164k': '20210709_155403-51b21115',
    'r101-d8_480x480_40k_pascal_context': '20200911_204118-1aa27336',
    'r101-d8_480x480_80k_pascal_context': '20200911_170155-2a21fff3',
    'r101-d8_480x480_40k_pascal_context_59': '20210416_110332-cb08ea46',
    'r101-d8_480x480_80k_pascal_context_59': '20210416_113002-26303993',
    'r101-d8_512x512_4x4_20k_coco-stuff10k': '20210821_043025-c49752cb',
    'r101-d8_512x512_4x4_40k_coco-stuff10k': '20210821_043305-636cb433',
    'r101-d8_512x512_4x4_80k_coco-stuff164k': '20210709_201252-13600dc2',
    'r101-d8_512x512_4x4_160k_coco-stuff164k': '20210709_155402-f035acfd',
    'r101-d8_512x512_4x4_320k_coco-stuff164k': '20210709_155402-3cbca14d',
}


def get_config(arg=None):
  c = jc.recipe('deeplabv3', arg, VARIANTS)
  c4, ch, c3, aux_ch = jc.resnet_widths(c.model.backbone)
  d16 = c.model.backbone.multi_grid is not None
  c.model.decode_head = jc.head(c, 'ASPPHead', in_channels=c4, in_index=3, channels=ch,
                                dilations=(1, 6, 12, 18) if d16 else (1, 12, 24, 36),
                                dropout_ratio=0.1)
  if d16:
    c.model.decode_head.sampler = dict(type='OHEMPixelSampler', thresh=None, min_kept=100000)
  c.model.auxiliary_head = jc.fcn_aux_head(c, c3, aux_ch)
  return c
