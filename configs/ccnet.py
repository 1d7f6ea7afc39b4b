"""CCNet (MMSeg ``ccnet_<variant>``): CCHead, criss-cross attention applied twice."""
from jseg import config as jc

VARIANTS = jc.variants(('r50-d8', 'r101-d8'))


# MMSeg's published weights of these variants (jseg.zoo): the DATE_TIME-HASH of the checkpoint's
# file name, or its whole URL where the file is not named after the variant.
WEIGHTS = {
    'r50-d8_512x1024_40k_cityscapes': '20200616_142517-4123f401',
    'r50-d8_512x1024_80k_cityscapes': '20200617_010421-869a3423',
    'r50-d8_769x769_40k_cityscapes': '20200616_145125-76d11884',
    'r50-d8_769x769_80k_cityscapes': '20200617_010421-73eed8ca',
    'r50-d8_512x512_80k_ade20k': '20200615_014848-aa37f61e',
    'r50-d8_512x512_160k_ade20k': '20200616_084435-7c97193b',
    'r50-d8_512x512_20k_voc12aug': '20200617_193212-fad81784',
    'r50-d8_512x512_40k_voc12aug': '20200613_232127-c2a15f02',
    'r101-d8_512x1024_40k_cityscapes': '20200616_142540-a3b84ba6',
    'r101-d8_512x1024_80k_cityscapes': '20200617_203935-ffae8917',
    'r101-d8_769x769_40k_cityscapes': '20200617_101428-4f57c8d0',
    'r101-d8_769x769_80k_cityscapes': '20200618_011502-ad3cd481',
    'r101-d8_512x512_80k_ade20k': '20200615_014848-1f4929a3',
    'r101-d8_512x512_160k_ade20k': '20200616_000644-e849e007',
    'r101-d8_512x512_20k_voc12aug': '20200617_193212-0007b61d',
    'r101-d8_512x512_40k_voc12aug': '20200613_232127-c30da577',
}


def get_config(arg=None):
  c = jc.recipe('ccnet', arg, VARIANTS)
  c4, ch, c3, aux_ch = jc.resnet_widths(c.model.backbone)
  c.model.decode_head = jc.head(c, 'CCHead', in_channels=c4, in_index=3, channels=ch,
                                recurrence=2, dropout_ratio=0.1)
  c.model.auxiliary_head = jc.fcn_aux_head(c, c3, aux_ch)
  return c
