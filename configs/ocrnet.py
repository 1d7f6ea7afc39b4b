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
