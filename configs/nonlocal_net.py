"""NonLocal (MMSeg ``nonlocal_<variant>``): NLHead, an embedded-Gaussian NonLocal2d block."""
from jseg import config as jc

VARIANTS = jc.variants(('r50-d8', 'r101-d8'))


# MMSeg's published weights of these variants (jseg.zoo): the DATE_TIME-HASH of the checkpoint's
# file name, or its whole URL where the file is not named after the variant.
WEIGHTS = {
    'r50-d8_512x1024_40k_cityscapes': '20200605_210748-c75e81e3',
    'r50-d8_512x1024_80k_cityscapes': '20200607_193518-d6839fae',
    'r50-d8_769x769_40k_cityscapes': '20200530_045243-82ef6749',
    'r50-d8_769x769_80k_cityscapes': '20200607_193506-1f9792f6',
    'r50-d8_512x512_80k_ade20k': '20200615_015801-5ae0aa33',
    'r50-d8_512x512_160k_ade20k': '20200616_005410-baef45e3',
    'r50-d8_512x512_20k_voc12aug': '20200617_222613-07f2a57c',
    'r50-d8_512x512_40k_voc12aug': '20200614_000028-0139d4a9',
    'r101-d8_512x1024_40k_cityscapes': '20200605_210748-d63729fa',
    'r101-d8_512x1024_80k_cityscapes': '20200607_183411-32700183',
    'r101-d8_769x769_40k_cityscapes': '20200530_045348-8fe9a9dc',
    'r101-d8_769x769_80k_cityscapes': '20200607_183428-0e1fa4f9',
    'r101-d8_512x512_80k_ade20k': '20200615_015758-24105919',
    'r101-d8_512x512_160k_ade20k': '20210827_221502-7881aa1a',
    'r101-d8_512x512_20k_voc12aug': '20200617_222615-948c68ab',
    'r101-d8_512x512_40k_voc12aug': '20200614_000028-7e5ff470',
}


def get_config(arg=None):
  c = jc.recipe('nonlocal', arg, VARIANTS)
  c4, ch, c3, aux_ch = jc.resnet_widths(c.model.backbone)
  c.model.decode_head = jc.head(c, 'NLHead', in_channels=c4, in_index=3, channels=ch,
                                reduction=2, use_scale=True, mode='embedded_gaussian',
                                dropout_ratio=0.1)
  c.model.auxiliary_head = jc.fcn_aux_head(c, c3, aux_ch)
  return c
