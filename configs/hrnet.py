"""HRNetV2 (MMSeg ``fcn_<variant>`` in configs/hrnet): FCNHead on all four branches.

The branches are resized to the highest resolution and concatenated; one 1x1
ConvModule keeps their summed width, no dropout (``dropout_ratio=-1``).
"""
from jseg import config as jc

VARIANTS = (jc.variants(('hr18s', 'hr18', 'hr48'),
                        schedules={'cityscapes': ('40k', '80k', '160k')},
                        crops={'cityscapes': ('512x1024',)})
            # v0.x's HRNet Potsdam names lack the 4x4 of its Vaihingen / iSAID ones.
            + jc.variants(('hr18s', 'hr18', 'hr48'),
                          datasets=('pascal_context', 'pascal_context_59', 'loveda', 'potsdam',
                                    'vaihingen', 'isaid'),
                          names={'potsdam': '{backbone}_{crop}_{schedule}_{dataset}'}))
DEFAULT = 'hr48_512x1024_160k_cityscapes'


def get_config(arg=None):
  c = jc.recipe('hrnet', arg or DEFAULT, VARIANTS)
  c.model.decode_head = jc.hrnet_fcn_head(c)
  return c
