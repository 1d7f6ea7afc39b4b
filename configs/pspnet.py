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


# MMSeg's published weights of these variants (jseg.zoo): the DATE_TIME-HASH of the checkpoint's
# file name, or its whole URL where the file is not named after the variant.
WEIGHTS = {
    'r18-d8_512x1024_80k_cityscapes': '20201225_021458-09ffa746',
    'r18-d8_769x769_80k_cityscapes': '20201225_021458-3deefc62',
    'r50-d8_512x1024_40k_cityscapes': '20200605_003338-2966598c',
    'r50-d8_512x1024_80k_cityscapes': '20200606_112131-2376f12b',
    'r50-d8_769x769_40k_cityscapes': '20200606_112725-86638686',
    'r50-d8_769x769_80k_cityscapes': '20200606_210121-5ccf03dd',
    'r50-d8_512x512_80k_ade20k': '20200615_014128-15a8b914',
    'r50-d8_512x512_160k_ade20k': '20200615_184358-1890b0bd',
    'r50-d8_512x512_20k_voc12aug': '20200617_101958-ed5dfbd9',
    'r50-d8_512x512_40k_voc12aug': '20200613_161222-ae9c1b8c',
    'r101-d8_512x1024_40k_cityscapes': '20200604_232751-467e7cf4',
    'r101-d8_512x1024_80k_cityscapes': '20200606_112211-e1e1100f',
    'r101-d8_769x769_40k_cityscapes': '20200606_112753-61c6f5be',
    'r101-d8_769x769_80k_cityscapes': '20200606_225055-dba412fa',
    'r101-d8_512x512_80k_ade20k': '20200614_031423-b6e782f0',
    'r101-d8_512x512_160k_ade20k': '20200615_100650-967c316f',
    'r101-d8_512x512_20k_voc12aug': '20200617_102003-4aef3c9a',
    'r101-d8_512x512_40k_voc12aug': '20200613_161222-bc933b18',
    'r18b-d8_512x1024_80k_cityscapes': '20201226_063116-26928a60',
    'r18b-d8_769x769_80k_cityscapes': '20201226_080942-bf98d186',
    'r50b-d8_512x1024_80k_cityscapes': '20201225_094315-6344287a',
    'r50b-d8_769x769_80k_cityscapes': '20201225_094316-4c643cf6',
    'r101b-d8_512x1024_80k_cityscapes': '20201226_170012-3a4d38ab',
    'r101b-d8_769x769_80k_cityscapes': '20201226_171823-f0e7c293',
    'r101-d8_512x1024_80k_fp16_cityscapes':
        ('https://download.openmmlab.com/mmsegmentation/v0.5/pspnet/pspnet_r101-d8_fp16_512x1024_80k_cityscapes/'
         'pspnet_r101-d8_fp16_512x1024_80k_cityscapes_20200717_230919-a0875e5c.pth'),
    'r50-d8_512x512_4x4_20k_coco-stuff10k': '20210820_203258-b88df27f',
    'r50-d8_512x512_4x4_40k_coco-stuff10k': '20210821_030857-92e2902b',
    'r50-d8_512x512_4x4_80k_coco-stuff164k': '20210707_152034-0e41b2db',
    'r50-d8_512x512_4x4_160k_coco-stuff164k': '20210707_152004-51276a57',
    'r50-d8_512x512_4x4_320k_coco-stuff164k': '20210707_152004-be9610cc',
    'r101-d8_480x480_40k_pascal_context': '20200911_211210-bf0f5d7c',
    'r101-d8_480x480_80k_pascal_context': '20200911_190530-c86d6233',
    'r101-d8_480x480_40k_pascal_context_59': '20210416_114524-86d44cd4',
    'r101-d8_480x480_80k_pascal_context_59': '20210416_114418-fa6caaa2',
    'r101-d8_512x512_4x4_20k_coco-stuff10k': '20210820_232135-76aae482',
    'r101-d8_512x512_4x4_40k_coco-stuff10k': '20210821_014022-831aec95',
    'r101-d8_512x512_4x4_80k_coco-stuff164k': '20210707_152034-7eb41789',
    'r101-d8_512x512_4x4_160k_coco-stuff164k': '20210707_152004-4af9621b',
    'r101-d8_512x512_4x4_320k_coco-stuff164k': '20210707_152004-72220c60',
    'r18-d8_512x512_80k_loveda': '20211105_052100-b97697f1',
    'r18-d8_4x4_512x512_80k_potsdam': '20211220_125612-7cd046e1',
    'r18-d8_4x4_512x512_80k_vaihingen': '20211228_160355-52a8a6f6',
    'r18-d8_4x4_896x896_80k_isaid': '20220110_180526-e84c0b6a',
    'r50-d8_512x512_80k_loveda': '20211104_155728-88610f9f',
    'r50-d8_4x4_512x512_80k_potsdam': '20211219_043541-2dd5fe67',
    'r50-d8_4x4_512x512_80k_vaihingen': '20211228_160355-382f8f5b',
    'r50-d8_4x4_896x896_80k_isaid': '20220110_180629-1f21dc32',
    'r101-d8_512x512_80k_loveda': '20211104_153212-1c06c6a8',
    'r101-d8_4x4_512x512_80k_potsdam': '20211220_125612-aed036c4',
    'r101-d8_4x4_512x512_80k_vaihingen': '20211231_230806-8eba0a09',
    'r50-d32_512x1024_80k_cityscapes': '20220316_224840-9092b254',
    'r50b-d32_512x1024_80k_cityscapes': '20220311_152152-23bcaf8c',
    'r50-d8_rsb-pretrain_512x1024_adamw_80k_cityscapes':
        ('https://download.openmmlab.com/mmsegmentation/v0.5/pspnet/pspnet_r50-d8_512x1024_80k_cityscapes/'
         'pspnet_r50-d8_rsb-pretrain_512x1024_adamw_80k_cityscapes_20220315_123238-588c30be.pth'),
    'r50-d32_rsb-pretrain_512x1024_adamw_80k_cityscapes': '20220316_141229-dd9c9610',
}


def get_config(arg=None):
  c = jc.recipe('pspnet', arg, VARIANTS)
  c4, ch, c3, aux_ch = jc.resnet_widths(c.model.backbone)
  c.model.decode_head = jc.head(c, 'PSPHead', in_channels=c4, in_index=3, channels=ch,
                                pool_scales=(1, 2, 3, 6), dropout_ratio=0.1)
  c.model.auxiliary_head = jc.fcn_aux_head(c, c3, aux_ch)
  return c
