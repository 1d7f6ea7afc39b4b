"""OCRNet (MMSeg ``ocrnet_<variant>``): a cascade of an FCNHead and the OCRHead.

The FCNHead (loss weight 0.4) predicts soft object regions from which the OCRHead
(weight 1.0) gathers class centres. HRNetV2 variants use HRNet's FCN head and
schedules; the ResNet-101 ones (Cityscapes only) name their global batch as v0.x
did: ``r101-d8_512x1024_40k_b8_cityscapes`` (MMSeg 1.x ``4xb2``),
``..._b16_...`` (``8xb2``, lr 0.02, min lr 2e-4; the 80k one decays over 40k only).
"""
import ml_collections

from jseg import config as jc

HRNET_VARIANTS = jc.variants(('hr18s', 'hr18', 'hr48'),
                             schedules={'cityscapes': ('40k', '80k', '160k')},
                             crops={'cityscapes': ('512x1024',)})
RESNET_VARIANTS = ('r101-d8_512x1024_40k_b8_cityscapes', 'r101-d8_512x1024_40k_b16_cityscapes',
                   'r101-d8_512x1024_80k_b16_cityscapes')
VARIANTS = HRNET_VARIANTS + list(RESNET_VARIANTS)
DEFAULT = 'hr48_512x1024_160k_cityscapes'


# MMSeg's published weights of these variants (jseg.zoo): the DATE_TIME-HASH of the checkpoint's
# file name, or its whole URL where the file is not named after the variant.
WEIGHTS = {
    'hr18s_512x1024_40k_cityscapes':
        ('https://download.openmmlab.com/mmsegmentation/v0.5/ocrnet/ocrnet_hr18s_4xb2-40k_cityscapes-512x1024/'
         'ocrnet_hr18s_4xb2-40k_cityscapes-512x1024_20230227_145026-6c052a14.pth'),
    'hr18s_512x1024_80k_cityscapes': '20200601_222735-55979e63',
    'hr18s_512x1024_160k_cityscapes': '20200602_191005-f4a7af28',
    'hr18s_512x512_80k_ade20k': '20200615_055600-e80b62af',
    'hr18s_512x512_160k_ade20k': '20200615_184505-8e913058',
    'hr18s_512x512_20k_voc12aug': '20200617_233913-02b04fcb',
    'hr18s_512x512_40k_voc12aug': '20200614_002025-42b587ac',
    'hr18_512x1024_40k_cityscapes': '20200601_033320-401c5bdd',
    'hr18_512x1024_80k_cityscapes': '20200614_230521-c2e1dd4a',
    'hr18_512x1024_160k_cityscapes': '20200602_191001-b9172d0c',
    'hr18_512x512_80k_ade20k': '20200615_053157-d173d83b',
    'hr18_512x512_160k_ade20k': '20200615_200940-d8fcd9d1',
    'hr18_512x512_20k_voc12aug': '20200617_233932-8954cbb7',
    'hr18_512x512_40k_voc12aug': '20200614_015958-714302be',
    'hr48_512x1024_40k_cityscapes': '20200601_033336-55b32491',
    'hr48_512x1024_80k_cityscapes': '20200601_222752-9076bcdf',
    'hr48_512x1024_160k_cityscapes': '20200602_191037-dfbf1b0c',
    'hr48_512x512_80k_ade20k': '20200615_021518-d168c2d1',
    'hr48_512x512_160k_ade20k': '20200615_184705-a073726d',
    'hr48_512x512_20k_voc12aug': '20200617_233932-9e82080a',
    'hr48_512x512_40k_voc12aug': '20200614_015958-255bc5ce',
    'r101-d8_512x1024_40k_b8_cityscapes': '20200717_110721-02ac0f13',
    'r101-d8_512x1024_40k_b16_cityscapes': '20200723_193726-db500f80',
    'r101-d8_512x1024_80k_b16_cityscapes': '20200723_192421-78688424',
}


def get_config(arg=None):
  arg = arg or DEFAULT
  if arg in RESNET_VARIANTS:
    backbone, crop, sched, batch, dataset = arg.split('_')
    base = '_'.join((backbone, crop, sched, dataset))
    c = jc.recipe('ocrnet', base, [base])
    c.name = f'ocrnet_{arg}'
    c.train.batch_size = int(batch[1:])
    if c.train.batch_size == 16:
      c.train.lr, c.train.min_lr = 0.02, 2e-4
      c.train.schedule_end = 40000  # MMSeg's 80k b16 recipe ends its poly decay at 40k
    c4, ch, c3, aux_ch = jc.resnet_widths(c.model.backbone)
    fcn = jc.head(c, 'FCNHead', in_channels=c3, in_index=2, channels=aux_ch, num_convs=1,
                  concat_input=False, dropout_ratio=0.1)
    fcn['loss_decode'] = jc.loss_decode(0.4)
    ocr = jc.head(c, 'OCRHead', in_channels=c4, in_index=3, channels=ch, ocr_channels=256,
                  dropout_ratio=0.1)
  else:
    c = jc.recipe('ocrnet', arg, VARIANTS)
    fcn = jc.hrnet_fcn_head(c, loss_weight=0.4)
    ocr = jc.head(c, 'OCRHead', in_channels=fcn['in_channels'], in_index=(0, 1, 2, 3),
                  input_transform='resize_concat', channels=512, ocr_channels=256,
                  dropout_ratio=-1)
  c.model.type = 'CascadeEncoderDecoder'
  c.model.num_stages = 2
  heads = [ml_collections.ConfigDict(fcn), ml_collections.ConfigDict(ocr)]
  for head in heads:  # jc.load's lock does not reach into lists
    head.lock()
  c.model.decode_head = heads
  return c
