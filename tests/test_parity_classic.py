"""FCN / PSPNet / DeepLabV3 / DeepLabV3+ equal MMSeg: eval logits and training losses."""
import pytest

import parity

# Each method with each backbone depth; both align_corners settings; 19 / 150 / 21 classes;
# the ResNetV1b stem (``rNb``) at two depths and both align_corners settings.
CASES = [
    ('fcn', 'r18-d8_512x1024_80k_cityscapes'),
    ('fcn', 'r50-d8_512x512_80k_ade20k'),
    ('fcn', 'r101-d8_769x769_40k_cityscapes'),
    ('pspnet', 'r18-d8_769x769_80k_cityscapes'),
    ('pspnet', 'r50-d8_512x512_20k_voc12aug'),
    ('pspnet', 'r101-d8_512x512_160k_ade20k'),
    ('deeplabv3', 'r18-d8_512x1024_80k_cityscapes'),
    ('deeplabv3', 'r50-d8_769x769_80k_cityscapes'),
    ('deeplabv3', 'r101-d8_512x512_40k_voc12aug'),
    ('deeplabv3', 'r101-d16-mg124_512x1024_80k_cityscapes'),
    ('deeplabv3plus', 'r18-d8_769x769_80k_cityscapes'),
    ('deeplabv3plus', 'r50-d8_512x1024_40k_cityscapes'),
    ('deeplabv3plus', 'r101-d8_512x512_80k_ade20k'),
    # ResNetV1b (MMSeg's ``ResNet``: 7x7 stem, torchvision's weights)
    ('fcn', 'r18b-d8_769x769_80k_cityscapes'),
    ('fcn', 'r50b-d8_512x1024_80k_cityscapes'),
    ('pspnet', 'r50b-d8_769x769_80k_cityscapes'),
]


@pytest.mark.parametrize('method,variant', CASES)
def test_eval_logits_equal_mmseg(method, variant):
  parity.assert_eval_logits_equal(*parity.pair(method, variant))


@pytest.mark.parametrize('method,variant', [('deeplabv3', 'r101-d16-mg124_512x1024_80k_cityscapes')])
def test_train_losses_equal_mmseg(method, variant):
  """Every loss term (OHEM's too) and the BN updates in float32, dropout off, on ResNet-101
  (the R-18 variants train in float64 in test_trajectory.py)."""
  config, mm = parity.pair(method, variant, dropout=False)
  if method == 'deeplabv3' and 'd16' in variant:  # make OHEM select a strict subset
    config.model.decode_head.sampler.min_kept = 2000
    mm.decode_head.sampler.min_kept = 2000
  parity.assert_train_losses_equal(config, mm)
