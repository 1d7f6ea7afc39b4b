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


# MMSeg's published weights of these variants (jseg.zoo): the DATE_TIME-HASH of the checkpoint's
# file name, or its whole URL where the file is not named after the variant.
WEIGHTS = {
    'r18-d8_512x1024_80k_cityscapes': '20201225_021327-6c50f8b4',
    'r18-d8_769x769_80k_cityscapes': '20201225_021451-9739d1b8',
    'r50-d8_512x1024_40k_cityscapes': '20200604_192608-efe53f0d',
    'r50-d8_512x1024_80k_cityscapes': '20200606_113019-03aa804d',
    'r50-d8_769x769_40k_cityscapes': '20200606_113104-977b5d02',
    'r50-d8_769x769_80k_cityscapes': '20200606_195749-f5caeabc',
    'r50-d8_512x512_80k_ade20k': '20200614_144016-f8ac5082',
    'r50-d8_512x512_160k_ade20k': '20200615_100713-4edbc3b4',
    'r50-d8_512x512_20k_voc12aug': '20200617_010715-52dc5306',
    'r50-d8_512x512_40k_voc12aug': '20200613_161222-5e2dbf40',
    'r101-d8_512x1024_40k_cityscapes': '20200604_181852-a883d3a1',
    'r101-d8_512x1024_80k_cityscapes': '20200606_113038-3fb937eb',
    'r101-d8_769x769_40k_cityscapes': '20200606_113208-7d4ab69c',
    'r101-d8_769x769_80k_cityscapes': '20200606_214354-45cbac68',
    'r101-d8_512x512_80k_ade20k': '20200615_014143-bc1809f7',
    'r101-d8_512x512_160k_ade20k': '20200615_105816-fd192bd5',
    'r101-d8_512x512_20k_voc12aug': '20200617_010842-0bb4e798',
    'r101-d8_512x512_40k_voc12aug': '20200613_161240-4c8bcefd',
    'r18b-d8_512x1024_80k_cityscapes': '20201225_230143-92c0f445',
    'r18b-d8_769x769_80k_cityscapes': '20201226_004430-32d504e5',
    'r50b-d8_512x1024_80k_cityscapes': '20201225_094221-82957416',
    'r50b-d8_769x769_80k_cityscapes': '20201225_094223-94552d38',
    'r101b-d8_512x1024_80k_cityscapes': '20201226_160213-4543858f',
    'r101b-d8_769x769_80k_cityscapes': '20201226_170012-82be37e2',
    'r101-d8_512x1024_80k_fp16_cityscapes':
        ('https://download.openmmlab.com/mmsegmentation/v0.5/fcn/fcn_r101-d8_fp16_512x1024_80k_cityscapes/'
         'fcn_r101-d8_fp16_512x1024_80k_cityscapes_20200717_230921-fb13e883.pth'),
    'r101-d8_480x480_40k_pascal_context': '20210421_154757-b5e97937',
    'r101-d8_480x480_80k_pascal_context': '20210421_163310-4711813f',
    'r101-d8_480x480_40k_pascal_context_59': '20210415_230724-8cf83682',
    'r101-d8_480x480_80k_pascal_context_59': '20210416_110804-9a6f2c94',
    'd6_r50-d16_512x1024_40k_cityscapes': '20210305_130133-98d5d1bc',
    'd6_r50-d16_512x1024_80k_cityscapes': '20210306_115604-133c292f',
    'd6_r50-d16_769x769_40k_cityscapes': '20210305_185744-1aab18ed',
    'd6_r50-d16_769x769_80k_cityscapes': '20210305_200413-109d88eb',
    'd6_r101-d16_512x1024_40k_cityscapes': '20210305_130337-9cf2b450',
    'd6_r101-d16_512x1024_80k_cityscapes': '20210308_102747-cb336445',
    'd6_r101-d16_769x769_40k_cityscapes': '20210308_102453-60b114e9',
    'd6_r101-d16_769x769_80k_cityscapes': '20210306_120016-e33adc4f',
    'd6_r50b-d16_512x1024_80k_cityscapes': '20210311_125550-6a0b62e9',
    'd6_r50b-d16_769x769_80k_cityscapes': '20210311_131012-d665f231',
    'd6_r101b-d16_512x1024_80k_cityscapes': '20210311_144305-3f2eb5b4',
    'd6_r101b-d16_769x769_80k_cityscapes': '20210311_154527-c4d8bfbc',
}


def get_config(arg=None):
  c = jc.recipe('fcn', arg, VARIANTS)
  c4, ch, c3, aux_ch = jc.resnet_widths(c.model.backbone)
  head = jc.split_variant(arg or jc.DEFAULT_VARIANT).head
  dilation = dict(dilation=int(head[1:])) if head else {}
  c.model.decode_head = jc.head(c, 'FCNHead', in_channels=c4, in_index=3, channels=ch,
                                num_convs=2, concat_input=True, dropout_ratio=0.1, **dilation)
  c.model.auxiliary_head = jc.fcn_aux_head(c, c3, aux_ch, **dilation)
  return c
