"""PSANet (MMSeg ``psanet_<variant>``): bi-directional PSAHead, 2x shrunk attention.

The attention window ``mask_size`` is (97, 97), (66, 66) on ADE20K as in MMSeg.
"""
from jseg import config as jc

VARIANTS = jc.variants(('r50-d8', 'r101-d8'))


# MMSeg's published weights of these variants (jseg.zoo): the DATE_TIME-HASH of the checkpoint's
# file name, or its whole URL where the file is not named after the variant.
WEIGHTS = {
    'r50-d8_512x1024_40k_cityscapes': '20200606_103117-99fac37c',
    'r50-d8_512x1024_80k_cityscapes': '20200606_161842-ab60a24f',
    'r50-d8_769x769_40k_cityscapes': '20200530_033717-d5365506',
    'r50-d8_769x769_80k_cityscapes': '20200606_225134-fe42f49e',
    'r50-d8_512x512_80k_ade20k': '20200614_144141-835e4b97',
    'r50-d8_512x512_160k_ade20k': '20200615_161258-148077dd',
    'r50-d8_512x512_20k_voc12aug': '20200617_102413-2f1bbaa1',
    'r50-d8_512x512_40k_voc12aug': '20200613_161946-f596afb5',
    'r101-d8_512x1024_40k_cityscapes': '20200606_001418-27b9cfa7',
    'r101-d8_512x1024_80k_cityscapes': '20200606_161823-0f73a169',
    'r101-d8_769x769_40k_cityscapes': '20200530_035107-997da1e6',
    'r101-d8_769x769_80k_cityscapes': '20200606_214550-7665827b',
    'r101-d8_512x512_80k_ade20k': '20200614_185117-1fab60d4',
    'r101-d8_512x512_160k_ade20k': '20200615_161537-dbfa564c',
    'r101-d8_512x512_20k_voc12aug': '20200617_110624-946fef11',
    'r101-d8_512x512_40k_voc12aug': '20200613_161946-1f560f9e',
}


def get_config(arg=None):
  c = jc.recipe('psanet', arg, VARIANTS)
  c4, ch, c3, aux_ch = jc.resnet_widths(c.model.backbone)
  c.model.decode_head = jc.head(
      c, 'PSAHead', in_channels=c4, in_index=3, channels=ch,
      mask_size=(66, 66) if c.data.dataset == 'ade20k' else (97, 97),
      psa_type='bi-direction', compact=False, shrink_factor=2, normalization_factor=1.0,
      psa_softmax=True, dropout_ratio=0.1)
  c.model.auxiliary_head = jc.fcn_aux_head(c, c3, aux_ch)
  return c
