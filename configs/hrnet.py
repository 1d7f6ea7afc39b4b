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


# MMSeg's published weights of these variants (jseg.zoo): the DATE_TIME-HASH of the checkpoint's
# file name, or its whole URL where the file is not named after the variant.
WEIGHTS = {
    'hr18s_512x1024_40k_cityscapes': '20200601_014216-93db27d0',
    'hr18s_512x1024_80k_cityscapes': '20200601_202700-1462b75d',
    'hr18s_512x1024_160k_cityscapes': '20200602_190901-4a0797ea',
    'hr18s_512x512_80k_ade20k': '20200614_144345-77fc814a',
    'hr18s_512x512_160k_ade20k': '20210829_174739-f1e7c2e7',
    'hr18s_512x512_20k_voc12aug': '20210829_174910-0aceadb4',
    'hr18s_512x512_40k_voc12aug': '20200614_000648-4f8d6e7f',
    'hr18_512x1024_40k_cityscapes': '20200601_014216-f196fb4e',
    'hr18_512x1024_80k_cityscapes': '20200601_223255-4e7b345e',
    'hr18_512x1024_160k_cityscapes': '20200602_190822-221e4a4f',
    'hr18_512x512_80k_ade20k': '20210827_114910-6c9382c0',
    'hr18_512x512_160k_ade20k': '20200614_214426-ca961836',
    'hr18_512x512_20k_voc12aug': '20200617_224503-488d45f7',
    'hr18_512x512_40k_voc12aug': '20200613_224401-1b4b76cd',
    'hr48_512x1024_40k_cityscapes': '20200601_014240-a989b146',
    'hr48_512x1024_80k_cityscapes': '20200601_202606-58ea95d6',
    'hr48_512x1024_160k_cityscapes': '20200602_190946-59b7973e',
    'hr48_512x512_80k_ade20k': '20200614_193946-7ba5258d',
    'hr48_512x512_160k_ade20k': '20200614_214407-a52fc02c',
    'hr48_512x512_20k_voc12aug': '20200617_224419-89de05cd',
    'hr48_512x512_40k_voc12aug': '20200613_222111-1b0f18bc',
    'hr18s_512x512_80k_loveda': '20211210_203228-60a86a7a',
    'hr18s_512x512_80k_potsdam': '20211218_205517-ba32af63',
    'hr18s_4x4_512x512_80k_vaihingen': '20211231_230909-b23aae02',
    'hr18s_4x4_896x896_80k_isaid': '20220118_001603-3cc0769b',
    'hr18_512x512_80k_loveda': '20211210_203952-93d9c3b3',
    'hr18_512x512_80k_potsdam': '20211218_205517-5d0387ad',
    'hr18_4x4_512x512_80k_vaihingen': '20211231_231216-2ec3ae8a',
    'hr18_4x4_896x896_80k_isaid': '20220110_182230-49bf752e',
    'hr48_480x480_40k_pascal_context': '20200911_164852-667d00b0',
    'hr48_480x480_80k_pascal_context': '20200911_155322-847a6711',
    'hr48_480x480_40k_pascal_context_59': '20210410_122738-b808b8b2',
    'hr48_480x480_80k_pascal_context_59': '20210411_003240-3ae7081e',
    'hr48_512x512_80k_loveda': '20211211_044756-67072f55',
    'hr48_512x512_80k_potsdam': '20211219_020601-97434c78',
    'hr48_4x4_512x512_80k_vaihingen': '20211231_231244-7133cb22',
    'hr48_4x4_896x896_80k_isaid': '20220114_174643-547fc420',
}


def get_config(arg=None):
  c = jc.recipe('hrnet', arg or DEFAULT, VARIANTS)
  c.model.decode_head = jc.hrnet_fcn_head(c)
  return c
