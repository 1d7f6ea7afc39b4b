"""GCNet (MMSeg ``gcnet_<variant>``): GCHead, a ContextBlock (ratio 1/4, attention pooling)."""
from jseg import config as jc

VARIANTS = jc.variants(('r50-d8', 'r101-d8'))


# MMSeg's published weights of these variants (jseg.zoo): the DATE_TIME-HASH of the checkpoint's
# file name, or its whole URL where the file is not named after the variant.
WEIGHTS = {
    'r50-d8_512x1024_40k_cityscapes': '20200618_074436-4b0fd17b',
    'r50-d8_512x1024_80k_cityscapes': '20200618_074450-ef8f069b',
    'r50-d8_769x769_40k_cityscapes': '20200618_182814-a26f4471',
    'r50-d8_769x769_80k_cityscapes': '20200619_092516-4839565b',
    'r50-d8_512x512_80k_ade20k': '20200614_185146-91a6da41',
    'r50-d8_512x512_160k_ade20k': '20200615_224122-d95f3e1f',
    'r50-d8_512x512_20k_voc12aug': '20200617_165701-3cbfdab1',
    'r50-d8_512x512_40k_voc12aug': '20200613_195105-9797336d',
    'r101-d8_512x1024_40k_cityscapes': '20200618_074436-5e62567f',
    'r101-d8_512x1024_80k_cityscapes': '20200618_074450-778ebf69',
    'r101-d8_769x769_40k_cityscapes': '20200619_092550-ca4f0a84',
    'r101-d8_769x769_80k_cityscapes': '20200619_092628-8e043423',
    'r101-d8_512x512_80k_ade20k': '20200615_020811-c3fcb6dd',
    'r101-d8_512x512_160k_ade20k': '20200615_225406-615528d7',
    'r101-d8_512x512_20k_voc12aug': '20200617_165713-6c720aa9',
    'r101-d8_512x512_40k_voc12aug': '20200613_185806-1e38208d',
}


def get_config(arg=None):
  c = jc.recipe('gcnet', arg, VARIANTS)
  c4, ch, c3, aux_ch = jc.resnet_widths(c.model.backbone)
  c.model.decode_head = jc.head(c, 'GCHead', in_channels=c4, in_index=3, channels=ch,
                                ratio=1 / 4, pooling_type='att', fusion_types=('channel_add',),
                                dropout_ratio=0.1)
  c.model.auxiliary_head = jc.fcn_aux_head(c, c3, aux_ch)
  return c
