"""Cross entropy and OHEM equal MMSeg's; fully ignored images give no NaN."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import torch

import mmseg_ref as ref
from mmseg.models.losses import CrossEntropyLoss
from mmseg.registry import TASK_UTILS
from jseg.models.losses import cross_entropy, ohem_weight

N, C, H, W = 2, 7, 11, 13


def _data(seed, ignored=0.3):
  rng = np.random.default_rng(seed)
  logits = (rng.standard_normal((N, H, W, C)) * 2).astype(np.float32)
  labels = rng.integers(0, C, (N, H, W))
  labels[rng.random((N, H, W)) < ignored] = 255
  return logits, labels


def _mmseg_ce(logits, labels, **kwargs):
  loss = CrossEntropyLoss(**kwargs)
  return float(loss(ref.nchw(logits), torch.from_numpy(labels), ignore_index=255))


@pytest.mark.parametrize('avg_non_ignore', [False, True])
def test_cross_entropy_equals_mmseg(avg_non_ignore):
  logits, labels = _data(0)
  want = _mmseg_ce(logits, labels, avg_non_ignore=avg_non_ignore)
  got = float(cross_entropy(jnp.asarray(logits), jnp.asarray(labels), avg_non_ignore=avg_non_ignore))
  assert abs(got - want) <= 1e-6 * abs(want)


def test_class_weighted_cross_entropy_equals_mmseg():
  # MMSeg 1.2.2 indexes class_weight with the labels, so its reference runs without ignored pixels.
  logits, labels = _data(1, ignored=0.0)
  weights = list(np.linspace(0.5, 2.0, C))
  want = _mmseg_ce(logits, labels, class_weight=weights)
  got = float(cross_entropy(jnp.asarray(logits), jnp.asarray(labels), class_weight=weights))
  assert abs(got - want) <= 1e-6 * abs(want)


@pytest.mark.parametrize('kwargs', [{}, {'avg_non_ignore': True}, {'class_weight': [1.0] * C}])
def test_fully_ignored_batch_has_finite_loss_and_gradient(kwargs):
  logits, _ = _data(2)
  labels = jnp.full((N, H, W), 255)
  loss, grad = jax.value_and_grad(lambda x: cross_entropy(x, labels, **kwargs))(jnp.asarray(logits))
  assert float(loss) == 0.0
  assert np.all(np.asarray(grad) == 0.0)


@pytest.mark.parametrize('thresh', [None, 0.7])
def test_ohem_weight_equals_mmseg_sampler(thresh):
  logits, labels = _data(3)

  class Context:  # what the sampler reads from its decode head
    ignore_index = 255
    loss_decode = CrossEntropyLoss()

  sampler = TASK_UTILS.build(dict(type='OHEMPixelSampler', context=Context(), thresh=thresh,
                                  min_kept=40))
  want = sampler.sample(ref.nchw(logits), torch.from_numpy(labels[:, None])).numpy()
  cfg = ml_collections.ConfigDict(dict(thresh=thresh, min_kept=40))
  got = np.asarray(ohem_weight(jnp.asarray(logits), jnp.asarray(labels), cfg))
  assert 0 < want.sum() < (labels != 255).sum()
  np.testing.assert_array_equal(got, want)
