"""UperNet (MMSeg ``upernet_<variant>``): UPerHead on all four stages of a non-dilated ResNetV1c."""
from jseg import config as jc

# ResNet-18 exists in the zoo for every dataset, but not at 769x769.
VARIANTS = jc.variants(('r18', 'r50', 'r101'), only={'r18': ('512x1024', 'ade20k', 'voc12aug')})


def get_config(arg=None):
  c = jc.recipe('upernet', arg, VARIANTS)
  expansion = 4 if c.model.backbone.depth >= 50 else 1
  widths = tuple(64 * 2**i * expansion for i in range(4))
  # MMSeg keeps the r50 head widths (512, aux 256) for ResNet-18 too.
  c.model.decode_head = jc.head(c, 'UPerHead', in_channels=widths, in_index=(0, 1, 2, 3),
                                pool_scales=(1, 2, 3, 6), channels=512, dropout_ratio=0.1)
  c.model.auxiliary_head = jc.fcn_aux_head(c, widths[2], 256)
  return c
