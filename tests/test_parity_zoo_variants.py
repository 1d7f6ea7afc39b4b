"""The zoo's other ResNet layouts equal MMSeg in eval: FCN-D6 (output stride 16, FCN heads at
dilation 6), PSPNet's d32 rows (every stage strided, the d8 dilations kept: strided dilated
convs) and DeepLabV3+'s output-stride-16 multi-grid variant. The other variants added with
them only differ from tested ones in their class count (tests/test_configs.py builds each)."""
import copy

import pytest

import mmseg_ref as ref
import parity
from jseg import config as jconfig

# On ResNet-18 (parity.on_resnet18: the heads' widths follow): the layout, not the depth, is
# new. FCN-D6 also at 193x225: stride-16 features of 13x15, where the dilation-6 taps land
# inside the map, not only in its padding.
RESNET18_CASES = [
    ('fcn', 'd6_r50-d16_512x1024_40k_cityscapes', (parity.ODD, (193, 225))),
    ('pspnet', 'r50-d32_512x1024_80k_cityscapes', parity.SIZES),
]


@pytest.mark.parametrize('method,variant,sizes', RESNET18_CASES,
                         ids=[f'{m}:{v}' for m, v, _ in RESNET18_CASES])
def test_eval_logits_equal_mmseg_on_resnet18(method, variant, sizes):
  parity.assert_eval_logits_equal(*parity.pair(method, variant, resnet18=True), sizes=sizes)


def test_deeplabv3plus_d16_multigrid_eval_logits_equal_mmseg():
  """On ResNet-50 (stage 3's 23 blocks cut to 6; the multi-grid stage 4 needs 3 blocks), at
  the odd size only (stride-16 features of 7x9: the ASPP's dilation-6 taps reach inside)."""
  method, variant = 'deeplabv3plus', 'r101-d16-mg124_512x1024_40k_cityscapes'
  config = copy.deepcopy(jconfig.load(f'configs/{method}.py:{variant}'))
  config.unlock()
  mm_cfg = ref.mmseg_config(method, variant).model
  assert tuple(mm_cfg.backbone.multi_grid) == (1, 2, 4) and mm_cfg.backbone.depth == 101
  config.model.backbone.depth = mm_cfg.backbone.depth = 50
  parity.assert_eval_logits_equal(config, ref.random_mmseg_model(mm_cfg),
                                  sizes=(parity.ODD,))
