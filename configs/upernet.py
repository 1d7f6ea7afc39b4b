"""UperNet (MMSeg ``upernet_<variant>``): UPerHead on all four stages of a non-dilated ResNetV1c."""
from jseg import config as jc

# ResNet-18 exists in the zoo for every dataset, but not at 769x769.
VARIANTS = jc.variants(('r18', 'r50', 'r101'), only={'r18': ('512x1024', 'ade20k', 'voc12aug')})


# MMSeg's published weights of these variants (jseg.zoo): the DATE_TIME-HASH of the checkpoint's
# file name, or its whole URL where the file is not named after the variant.
WEIGHTS = {
    'r50_512x1024_40k_cityscapes': '20200605_094827-aa54cb54',
    'r50_512x1024_80k_cityscapes': '20200607_052207-848beca8',
    'r50_769x769_40k_cityscapes': '20200530_033048-92d21539',
    'r50_769x769_80k_cityscapes': '20200607_005107-82ae7d15',
    'r50_512x512_80k_ade20k': '20200614_144127-ecc8377b',
    'r50_512x512_160k_ade20k': '20200615_184328-8534de8d',
    'r50_512x512_20k_voc12aug': '20200617_165330-5b5890a7',
    'r50_512x512_40k_voc12aug': '20200613_162257-ca9bcc6b',
    'r101_512x1024_40k_cityscapes': '20200605_094933-ebce3b10',
    'r101_512x1024_80k_cityscapes': '20200607_002403-f05f2345',
    'r101_769x769_40k_cityscapes': '20200530_040819-83c95d01',
    'r101_769x769_80k_cityscapes': '20200607_001014-082fc334',
    'r101_512x512_80k_ade20k': '20200614_185117-32e4db94',
    'r101_512x512_160k_ade20k': '20200615_161951-91b32684',
    'r101_512x512_20k_voc12aug': '20200617_165629-f14e7f27',
    'r101_512x512_40k_voc12aug': '20200613_163549-e26476ac',
}


def get_config(arg=None):
  c = jc.recipe('upernet', arg, VARIANTS)
  expansion = 4 if c.model.backbone.depth >= 50 else 1
  widths = tuple(64 * 2**i * expansion for i in range(4))
  # MMSeg keeps the r50 head widths (512, aux 256) for ResNet-18 too.
  c.model.decode_head = jc.head(c, 'UPerHead', in_channels=widths, in_index=(0, 1, 2, 3),
                                pool_scales=(1, 2, 3, 6), channels=512, dropout_ratio=0.1)
  c.model.auxiliary_head = jc.fcn_aux_head(c, widths[2], 256)
  return c
