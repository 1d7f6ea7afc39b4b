"""Initialization equals MMSeg's ``init_weights()`` in distribution: every variable of every
method, compared by its statistics (constants exactly; random ones by std, mean and shape)."""
import copy

import flax
import jax
import numpy as np
import pytest
import torch

import mmseg_ref as ref
import parity
from jseg import config as jconfig
from jseg import train
from jseg.convert import mmseg_to_jseg
from test_trajectory import CASES

# ResNetV1b (MMSeg's ``ResNet``: the 7x7 stem) besides the methods' cases.
INIT_CASES = CASES + [('fcn', 'r18b-d8_512x1024_80k_cityscapes')]


def _moments(x):
  """Mean, std and kurtosis, summed in float64 over float32 deviations (16x faster than in
  float64 throughout; float32 holds these values' deviations to 1e-7)."""
  x = np.asarray(x, np.float32).ravel()
  mean = x.mean(dtype=np.float64)
  squares = np.square(x - np.float32(mean))
  var = squares.mean(dtype=np.float64)
  return mean, np.sqrt(var), np.square(squares).mean(dtype=np.float64) / var ** 2


@pytest.mark.parametrize('method,variant', INIT_CASES)
def test_initial_variables_are_distributed_as_mmseg_init_weights(method, variant):
  config = copy.deepcopy(jconfig.load(f'configs/{method}.py:{variant}'))
  config.unlock()
  config.model.pretrained = None  # the random start: every variable initialized by its rule
  mm_cfg = ref.mmseg_config(method, variant).model
  if 'r50' in variant and method != 'danet':  # fewer layers; DANet keeps the Bottleneck's
    parity.on_resnet18(config.model, mm_cfg)
  if 'hr18s' in variant:
    parity.one_module_hrnet(config.model, mm_cfg)
  torch.manual_seed(0)
  mm = ref.build_mmseg_model(mm_cfg)
  mm.init_weights()
  want = flax.traverse_util.flatten_dict(mmseg_to_jseg(mm.state_dict(), config))
  got = flax.traverse_util.flatten_dict(train.init_variables(config, jax.random.key(0)))
  assert set(got) == set(want)
  wrong = []
  for path in sorted(want):
    a, b, name = np.asarray(got[path]), np.asarray(want[path]), '/'.join(path)
    if np.all(b == b.flat[0]):  # a constant (zeros, ones): the same constant
      if not np.all(a == b.flat[0]):
        wrong.append(f'{name}: MMSeg all {b.flat[0]}, jseg mean {a.mean():.3g} std {a.std():.3g}')
      continue
    n = b.size
    (ma, sa, ka), (mb, sb, kb) = _moments(a), _moments(b)
    # 6 standard errors of each statistic of n samples, a little slack for the shape.
    if (abs(sa / sb - 1) > 6 / np.sqrt(2 * n) or abs(ma - mb) > 6 * sb / np.sqrt(n)
        or (n >= 500 and abs(ka - kb) > 0.3 + 6 * np.sqrt(24 / n))):
      wrong.append(f'{name} ({n}): MMSeg mean {mb:.3g} std {sb:.3g} kurtosis {kb:.2f}, '
                   f'jseg mean {ma:.3g} std {sa:.3g} kurtosis {ka:.2f}')
  assert not wrong, f'{len(wrong)} of {len(want)} variables differ:\n' + '\n'.join(wrong)
