"""ANN (MMSeg ``ann_<variant>``): ANNHead on stages 3 and 4 (AFNB fusion, APNB context),
key pool scales (1, 3, 6, 8), 256 projection channels."""
from jseg import config as jc

VARIANTS = jc.variants(('r50-d8', 'r101-d8'))


def get_config(arg=None):
  c = jc.recipe('ann', arg, VARIANTS)
  c4, ch, c3, aux_ch = jc.resnet_widths(c.model.backbone)
  c.model.decode_head = jc.head(c, 'ANNHead', in_channels=(c3, c4), in_index=(2, 3),
                                input_transform='multiple_select', channels=ch,
                                project_channels=256, query_scales=(1,),
                                key_pool_scales=(1, 3, 6, 8), dropout_ratio=0.1)
  c.model.auxiliary_head = jc.fcn_aux_head(c, c3, aux_ch)
  return c
