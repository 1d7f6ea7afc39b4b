"""ANN (MMSeg ``ann_<variant>``): ANNHead on stages 3 and 4 (AFNB fusion, APNB context),
key pool scales (1, 3, 6, 8), 256 projection channels."""
from jseg import config as jc

VARIANTS = jc.variants(('r50-d8', 'r101-d8'))


# MMSeg's published weights of these variants (jseg.zoo): the DATE_TIME-HASH of the checkpoint's
# file name, or its whole URL where the file is not named after the variant.
WEIGHTS = {
    'r50-d8_512x1024_40k_cityscapes': '20200605_095211-049fc292',
    'r50-d8_512x1024_80k_cityscapes': '20200607_101911-5a9ad545',
    'r50-d8_769x769_40k_cityscapes': '20200530_025712-2b46b04d',
    'r50-d8_769x769_80k_cityscapes': '20200607_044426-cc7ff323',
    'r50-d8_512x512_80k_ade20k': '20200615_014818-26f75e11',
    'r50-d8_512x512_160k_ade20k': '20200615_231733-892247bc',
    'r50-d8_512x512_20k_voc12aug': '20200617_222246-dfcb1c62',
    'r50-d8_512x512_40k_voc12aug': '20200613_231314-b5dac322',
    'r101-d8_512x1024_40k_cityscapes': '20200605_095243-adf6eece',
    'r101-d8_512x1024_80k_cityscapes': '20200607_013728-aceccc6e',
    'r101-d8_769x769_40k_cityscapes': '20200530_025720-059bff28',
    'r101-d8_769x769_80k_cityscapes': '20200607_013713-a9d4be8d',
    'r101-d8_512x512_80k_ade20k': '20200615_014818-c0153543',
    'r101-d8_512x512_160k_ade20k': '20200615_231733-955eb1ec',
    'r101-d8_512x512_20k_voc12aug': '20200617_222246-2fad0042',
    'r101-d8_512x512_40k_voc12aug': '20200613_231314-bd205bbe',
}


def get_config(arg=None):
  c = jc.recipe('ann', arg, VARIANTS)
  c4, ch, c3, aux_ch = jc.resnet_widths(c.model.backbone)
  c.model.decode_head = jc.head(c, 'ANNHead', in_channels=(c3, c4), in_index=(2, 3),
                                input_transform='multiple_select', channels=ch,
                                project_channels=256, query_scales=(1,),
                                key_pool_scales=(1, 3, 6, 8), dropout_ratio=0.1)
  c.model.auxiliary_head = jc.fcn_aux_head(c, c3, aux_ch)
  return c
