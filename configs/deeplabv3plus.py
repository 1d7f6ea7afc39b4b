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


# MMSeg's published weights of these variants (jseg.zoo): the DATE_TIME-HASH of the checkpoint's
# file name, or its whole URL where the file is not named after the variant.
WEIGHTS = {
    'r18-d8_512x1024_80k_cityscapes': '20201226_080942-cff257fe',
    'r18-d8_769x769_80k_cityscapes': '20201226_083346-f326e06a',
    'r50-d8_512x1024_40k_cityscapes': '20200605_094610-d222ffcd',
    'r50-d8_512x1024_80k_cityscapes': '20200606_114049-f9fb496d',
    'r50-d8_769x769_40k_cityscapes': '20200606_114143-1dcb0e3c',
    'r50-d8_769x769_80k_cityscapes': '20200606_210233-0e9dfdc4',
    'r50-d8_512x512_80k_ade20k': '20200614_185028-bf1400d8',
    'r50-d8_512x512_160k_ade20k': '20200615_124504-6135c7e0',
    'r50-d8_512x512_20k_voc12aug': '20200617_102323-aad58ef1',
    'r50-d8_512x512_40k_voc12aug': '20200613_161759-e1b43aa9',
    'r101-d8_512x1024_40k_cityscapes': '20200605_094614-3769eecf',
    'r101-d8_512x1024_80k_cityscapes': '20200606_114143-068fcfe9',
    'r101-d8_769x769_40k_cityscapes': '20200606_114304-ff414b9e',
    'r101-d8_769x769_80k_cityscapes': '20220406_154720-dfcc0b68',
    'r101-d8_512x512_80k_ade20k': '20200615_014139-d5730af7',
    'r101-d8_512x512_160k_ade20k': '20200615_123232-38ed86bb',
    'r101-d8_512x512_20k_voc12aug': '20200617_102345-c7ff3d56',
    'r101-d8_512x512_40k_voc12aug': '20200613_205333-faf03387',
    'r101-d16-mg124_512x1024_40k_cityscapes': '20200908_005644-cf9ce186',
    'r101-d16-mg124_512x1024_80k_cityscapes': '20200908_005644-ee6158e0',
    'r18b-d8_512x1024_80k_cityscapes': '20201226_090828-e451abd9',
    'r18b-d8_769x769_80k_cityscapes': '20201226_151312-2c868aff',
    'r50b-d8_512x1024_80k_cityscapes': '20201225_213645-a97e4e43',
    'r50b-d8_769x769_80k_cityscapes': '20201225_224655-8b596d1c',
    'r101b-d8_512x1024_80k_cityscapes': '20201226_190843-9c3c93a4',
    'r101b-d8_769x769_80k_cityscapes': '20201226_205041-227cdf7c',
    'r101-d8_512x1024_80k_fp16_cityscapes':
        ('https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3plus/deeplabv3plus_r101-d8_fp16_512x1024_80k_cityscapes/'
         'deeplabv3plus_r101-d8_fp16_512x1024_80k_cityscapes_20200717_230920-f1104f4b.pth'),
    'r101-d8_480x480_40k_pascal_context': '20200911_165459-d3c8a29e',
    'r101-d8_480x480_80k_pascal_context': '20200911_155322-145d3ee8',
    'r101-d8_480x480_40k_pascal_context_59': '20210416_111233-ed937f15',
    'r101-d8_480x480_80k_pascal_context_59': '20210416_111127-7ca0331d',
    'r18-d8_512x512_80k_loveda': '20211104_132800-ce0fa0ca',
    'r18-d8_512x512_80k_potsdam': '20211219_020601-75fd5bc3',
    'r18-d8_4x4_512x512_80k_vaihingen': '20211231_230805-7626a263',
    'r18-d8_4x4_896x896_80k_isaid': '20220110_180526-7059991d',
    'r50-d8_512x512_80k_loveda': '20211105_080442-f0720392',
    'r50-d8_512x512_80k_potsdam': '20211219_031508-7e7a2b24',
    'r50-d8_4x4_512x512_80k_vaihingen': '20211231_230816-5040938d',
    'r50-d8_4x4_896x896_80k_isaid': '20220110_180526-598be439',
    'r101-d8_512x512_80k_loveda': '20211105_110759-4c1f297e',
    'r101-d8_512x512_80k_potsdam': '20211219_031508-8b112708',
    'r101-d8_4x4_512x512_80k_vaihingen': '20211231_230816-8a095afa',
    'r50-d8_1280x1280_300k_mapillary_v1_65':
        ('https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3plus/deeplabv3plus_r50-d8_4xb2-300k_mapillay_v1_65-1280x1280/'
         'deeplabv3plus_r50-d8_4xb2-300k_mapillay_v1_65-1280x1280_20230301_110504-655f8e43.pth'),
}


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
