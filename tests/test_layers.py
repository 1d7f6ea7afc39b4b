"""Layers equal their PyTorch namesakes: resize, adaptive pooling, BatchNorm, Dropout2d."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jseg.models.layers import BatchNorm, adaptive_avg_pool, dropout2d, resize


def _nchw(x):
  return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def _close(got, want_t, tol=1e-5):
  want = want_t.numpy().transpose(0, 2, 3, 1)
  np.testing.assert_allclose(np.asarray(got), want, rtol=tol, atol=tol)


@pytest.mark.parametrize('align_corners', [False, True])
@pytest.mark.parametrize('src,dst', [((13, 17), (97, 131)), ((97, 131), (13, 17)),
                                     ((8, 8), (1, 1)), ((1, 1), (5, 7)), ((33, 65), (64, 128))])
def test_resize_equals_torch_interpolate(src, dst, align_corners):
  x = np.random.default_rng(0).standard_normal((2, *src, 3)).astype(np.float32)
  want = F.interpolate(_nchw(x), size=dst, mode='bilinear', align_corners=align_corners)
  _close(resize(jnp.asarray(x), dst, align_corners=align_corners), want)


@pytest.mark.parametrize('align_corners', [False, True])
@pytest.mark.parametrize('scale', [2, 0.5, 1.5])
def test_resize_scale_factor_equals_torch(scale, align_corners):
  x = np.random.default_rng(1).standard_normal((1, 13, 22, 2)).astype(np.float32)
  want = F.interpolate(_nchw(x), scale_factor=scale, mode='bilinear', align_corners=align_corners)
  _close(resize(jnp.asarray(x), scale_factor=scale, align_corners=align_corners), want)


@pytest.mark.parametrize('size', [(13, 17), (97, 131), (6, 6), (3, 5)])
@pytest.mark.parametrize('out', [1, 2, 3, 6, 8])
def test_adaptive_avg_pool_equals_torch(size, out):
  x = np.random.default_rng(2).standard_normal((2, *size, 4)).astype(np.float32)
  _close(adaptive_avg_pool(jnp.asarray(x), out), F.adaptive_avg_pool2d(_nchw(x), out))


def test_batchnorm_train_and_eval_equal_torch():
  rng = np.random.default_rng(3)
  x = rng.standard_normal((4, 7, 9, 5)).astype(np.float32) * 3 + 1
  bn_t = torch.nn.BatchNorm2d(5)
  with torch.no_grad():
    bn_t.weight.uniform_(0.5, 1.5)
    bn_t.bias.normal_()
  variables = {'params': {'scale': jnp.asarray(bn_t.weight.detach().numpy()),
                          'bias': jnp.asarray(bn_t.bias.detach().numpy())},
               'batch_stats': {'mean': jnp.zeros(5), 'var': jnp.ones(5)}}
  bn_t.train()
  want = bn_t(_nchw(x)).detach()
  got, upd = BatchNorm().apply(variables, jnp.asarray(x), True, mutable=['batch_stats'])
  _close(got, want, 1e-4)
  np.testing.assert_allclose(upd['batch_stats']['mean'], bn_t.running_mean.numpy(), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(upd['batch_stats']['var'], bn_t.running_var.numpy(), rtol=1e-5)
  bn_t.eval()
  variables['batch_stats'] = upd['batch_stats']
  _close(BatchNorm().apply(variables, jnp.asarray(x), False), bn_t(_nchw(x)).detach(), 1e-4)


class _Drop(nn.Module):
  rate: float

  @nn.compact
  def __call__(self, x, train):
    return dropout2d(x, self.rate, train)


def test_dropout2d_drops_whole_channels_and_rescales():
  x = jnp.ones((4, 5, 6, 64))
  y = np.asarray(_Drop(0.25).apply({}, x, True, rngs={'dropout': jax.random.key(0)}))
  per_channel = y.reshape(4, 30, 64)
  assert np.all(per_channel.min(1) == per_channel.max(1))  # constant over H, W
  np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.75], rtol=1e-6)
  assert 0.1 < np.mean(y == 0) < 0.4
  np.testing.assert_array_equal(_Drop(0.25).apply({}, x, False), x)  # eval: identity
