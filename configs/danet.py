"""DANet (MMSeg ``danet_<variant>``): DAHead, position (64 channels) and channel attention.

Training adds the ``pam`` and ``cam`` branch losses (weight 1 each) to ``pam_cam``'s.
"""
from jseg import config as jc

VARIANTS = jc.variants(('r50-d8', 'r101-d8'))


# MMSeg's published weights of these variants (jseg.zoo): the DATE_TIME-HASH of the checkpoint's
# file name, or its whole URL where the file is not named after the variant.
WEIGHTS = {
    'r50-d8_512x1024_40k_cityscapes': '20200605_191324-c0dbfa5f',
    'r50-d8_512x1024_80k_cityscapes': '20200607_133029-2bfa2293',
    'r50-d8_769x769_40k_cityscapes': '20200530_025703-76681c60',
    'r50-d8_769x769_80k_cityscapes': '20200607_132954-495689b4',
    'r50-d8_512x512_80k_ade20k': '20200615_015125-edb18e08',
    'r50-d8_512x512_160k_ade20k': '20200616_082340-9cb35dcd',
    'r50-d8_512x512_20k_voc12aug': '20200618_070026-9e9e3ab3',
    'r50-d8_512x512_40k_voc12aug': '20200613_235526-426e3a64',
    'r101-d8_512x1024_40k_cityscapes': '20200605_200831-c57a7157',
    'r101-d8_512x1024_80k_cityscapes': '20200607_132918-955e6350',
    'r101-d8_769x769_40k_cityscapes': '20200530_025717-dcb7fd4e',
    'r101-d8_769x769_80k_cityscapes': '20200607_132918-f3a929e7',
    'r101-d8_512x512_80k_ade20k': '20200615_015126-d0357c73',
    'r101-d8_512x512_160k_ade20k': '20200616_082348-23bf12f9',
    'r101-d8_512x512_20k_voc12aug': '20200618_070026-d48d23b2',
    'r101-d8_512x512_40k_voc12aug': '20200613_223031-788e232a',
}


def get_config(arg=None):
  c = jc.recipe('danet', arg, VARIANTS)
  c4, ch, c3, aux_ch = jc.resnet_widths(c.model.backbone)
  c.model.decode_head = jc.head(c, 'DAHead', in_channels=c4, in_index=3, channels=ch,
                                pam_channels=64, dropout_ratio=0.1)
  c.model.auxiliary_head = jc.fcn_aux_head(c, c3, aux_ch)
  return c
