"""HRNetV2 (FCN) and OCRNet (cascade) equal MMSeg: eval logits and training losses."""
import pytest

import parity
from parity import EVEN, ODD

# Every backbone width with each method; 19 / 150 / 21 classes; the even size on the smallest
# width only (the heads' resizes are the same code at every width; HRNet-W18 compiles for 30-50 s).
CASES = [
    ('hrnet', 'hr18s_512x1024_40k_cityscapes', (ODD, EVEN)),
    ('hrnet', 'hr18_512x512_80k_ade20k', (ODD,)),
    ('hrnet', 'hr48_512x512_20k_voc12aug', (ODD,)),
    ('ocrnet', 'hr18s_512x512_40k_voc12aug', (ODD, EVEN)),
    ('ocrnet', 'hr48_512x512_160k_ade20k', (ODD,)),
    ('ocrnet', 'r101-d8_512x1024_40k_b8_cityscapes', (ODD, EVEN)),
]


@pytest.mark.parametrize('method,variant,sizes', CASES, ids=[f'{m}:{v}' for m, v, _ in CASES])
def test_eval_logits_equal_mmseg(method, variant, sizes):
  parity.assert_eval_logits_equal(*parity.pair(method, variant), sizes)


# HRNetV2-W18-Small's HRNet and OCRNet train in float64 in test_trajectory.py.
TRAIN_CASES = [('ocrnet', 'r101-d8_512x1024_40k_b8_cityscapes')]


@pytest.mark.parametrize('method,variant', TRAIN_CASES, ids=[f'{m}:{v}' for m, v in TRAIN_CASES])
def test_train_losses_equal_mmseg(method, variant):
  """Every loss term and the BN updates, dropout off. For the cascade this covers MMSeg's
  second forward of the FCN stage (its BN statistics update twice).

  R-101's train-mode (batch statistics) features differ from float64 by ~1e-4 in MMSeg
  itself: the tolerances follow that (parity.assert_train_losses_equal).
  """
  parity.assert_train_losses_equal(*parity.pair(method, variant, dropout=False))
