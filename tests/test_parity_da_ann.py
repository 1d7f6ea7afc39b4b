"""DANet and ANN equal MMSeg: eval logits and training losses (DANet's three terms + aux)."""
import pytest

import parity

# r50-d8 and r101-d8 of each method; 19 / 150 / 21 classes; both align_corners settings.
CASES = [
    ('danet', 'r50-d8_769x769_40k_cityscapes'),
    ('danet', 'r101-d8_512x512_160k_ade20k'),
    ('danet', 'r50-d8_512x512_20k_voc12aug'),
    ('ann', 'r50-d8_512x1024_80k_cityscapes'),
    ('ann', 'r101-d8_769x769_80k_cityscapes'),
    ('ann', 'r50-d8_512x512_80k_ade20k'),
    ('ann', 'r101-d8_512x512_40k_voc12aug'),
]
DANET_TERMS = ('decode.pam_cam.loss_ce', 'decode.pam.loss_ce', 'decode.cam.loss_ce')


@pytest.mark.parametrize('method,variant', CASES)
def test_eval_logits_equal_mmseg(method, variant):
  parity.assert_eval_logits_equal(*parity.pair(method, variant))


@pytest.mark.parametrize('method,variant', [('danet', 'r50-d8_769x769_40k_cityscapes'),
                                            ('ann', 'r50-d8_512x512_20k_voc12aug')])
def test_train_losses_equal_mmseg(method, variant):
  """Every loss term (DANet's PAM, CAM and fused outputs each) and the BN updates
  (ANN's APNB updates its shared key/query projection BN twice), dropout off."""
  config, mm = parity.pair(method, variant, dropout=False)
  parity.assert_train_losses_equal(config, mm,
                                   must_have=DANET_TERMS if method == 'danet' else ())
