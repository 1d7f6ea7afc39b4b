"""The CPU convolution rewrites equal XLA's convolution: values and gradients, in float64
(to ~1e-15: the same products summed in another order) and float32, at odd sizes; the
dispatch picks them only where they apply."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import parity
from jseg.models import cpu_conv, layers

HIGHEST = lax.Precision.HIGHEST


def reference(x, w, padding, dilation, groups=1, stride=1):
  return lax.conv_general_dilated(x, w, (stride, stride), [(padding, padding)] * 2,
                                  rhs_dilation=(dilation, dilation),
                                  dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
                                  feature_group_count=groups, precision=HIGHEST)


def random(shape, dtype, seed):
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


def rel_err(a, b):
  return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


def assert_equal_float64(rewrite, conv, x_shape, k_shape):
  """``rewrite(x, k)`` equals ``conv(x, k)`` in float64, values and both gradients."""
  with jax.enable_x64():
    x = random(x_shape, jnp.float64, 0)
    k = random(k_shape, jnp.float64, 1)
    ct = random(jax.eval_shape(conv, x, k).shape, jnp.float64, 2)
    run = lambda f: jax.jit(lambda x, k: (f(x, k), jax.grad(  # noqa: E731
        lambda x, k: jnp.vdot(f(x, k), ct), (0, 1))(x, k)))(x, k)
    (got, got_grads), (want, want_grads) = run(rewrite), run(conv)
    assert got.shape == want.shape
    assert rel_err(got, want) < 1e-14
    for g, w in zip(got_grads, want_grads):
      assert rel_err(g, w) < 1e-14


@pytest.mark.parametrize('h, w, padding, dilation', [
    (13, 17, 1, 1), (12, 16, 1, 1), (9, 11, 0, 1), (13, 17, 2, 2), (21, 10, 3, 3),
    (7, 9, 4, 4)])
def test_winograd_equals_convolution_float64(h, w, padding, dilation):
  assert_equal_float64(
      lambda x, k: cpu_conv.winograd_conv3x3(x, k, padding, dilation, HIGHEST),
      lambda x, k: reference(x, k, padding, dilation), (2, h, w, 5), (3, 3, 5, 4))


@pytest.mark.parametrize('h, w, padding, dilation', [(13, 17, 1, 1), (8, 11, 12, 12),
                                                      (15, 9, 2, 2)])
def test_depthwise_equals_convolution_float64(h, w, padding, dilation):
  assert_equal_float64(
      lambda x, k: cpu_conv.depthwise_conv3x3(x, k, padding, dilation),
      lambda x, k: reference(x, k, padding, dilation, groups=6), (2, h, w, 6), (3, 3, 1, 6))


@pytest.mark.parametrize('h, w, stride, padding', [(13, 17, 1, 0), (13, 17, 2, 0), (8, 10, 2, 0),
                                                   (9, 11, 1, 1), (7, 6, 1, 2)])
def test_pointwise_equals_convolution_float64(h, w, stride, padding):
  assert_equal_float64(
      lambda x, k: cpu_conv.pointwise_conv(x, k, stride, HIGHEST, padding),
      lambda x, k: reference(x, k, padding, 1, stride=stride), (2, h, w, 5), (1, 1, 5, 4))


@pytest.mark.parametrize('h, w, padding, dilation, stride', [
    (13, 17, 1, 1, 1), (13, 17, 1, 1, 2), (12, 9, 3, 3, 1), (11, 16, 2, 2, 2), (9, 10, 0, 1, 1)])
def test_tap_grad_equals_convolution_float64(h, w, padding, dilation, stride):
  assert_equal_float64(
      lambda x, k: cpu_conv.tap_grad_conv3x3(x, k, stride, padding, dilation, HIGHEST),
      lambda x, k: reference(x, k, padding, dilation, stride=stride), (2, h, w, 5), (3, 3, 5, 4))


def test_winograd_float32_error_is_a_convolutions():
  """In float32 the rewrite is as far from float64 as XLA's own convolution (within 3x)."""
  with jax.enable_x64():
    x = random((1, 24, 40, 512), jnp.float64, 0)
    k = random((3, 3, 512, 64), jnp.float64, 1) / 48
    exact = reference(x, k, 2, 2)
    x32, k32 = x.astype(jnp.float32), k.astype(jnp.float32)
    xla = rel_err(reference(x32, k32, 2, 2).astype(jnp.float64), exact)
    wino = rel_err(cpu_conv.winograd_conv3x3(x32, k32, 2, 2, HIGHEST).astype(jnp.float64), exact)
    assert wino < 3 * xla + 1e-7, (wino, xla)


class Conv(nn.Module):
  """``layers.conv2d`` as a module of its own."""
  features: int
  kernel_size: int
  kwargs: dict

  @nn.compact
  def __call__(self, x):
    return layers.conv2d(x, self.features, self.kernel_size, **self.kwargs)


def kinds(monkeypatch, backend='cpu'):
  """``conv(shape, features, kernel_size, dtype, **kw)``: the rewrite ``layers.conv2d``
  picks, traced as if on ``backend``."""
  monkeypatch.setattr(jax, 'default_backend', lambda: backend)
  picked = []
  original = cpu_conv.rewrite_for
  monkeypatch.setattr(cpu_conv, 'rewrite_for',
                      lambda *a: picked.append(original(*a)) or picked[-1])

  def conv(shape, features, kernel_size, dtype=jnp.float32, **kw):
    module = Conv(features, kernel_size, kw)
    jax.eval_shape(lambda x: module.init(jax.random.key(0), x), jnp.zeros(shape, dtype))
    return picked[-1]
  return conv


def test_dispatch(monkeypatch):
  conv = kinds(monkeypatch)
  assert conv((1, 64, 128, 2048), 512, 3, padding=1) == 'winograd'
  assert conv((1, 64, 128, 2048), 512, 3, padding=12, dilation=12) == 'winograd'
  assert conv((1, 13, 17, 2048), 512, 3, padding=36, dilation=36) is None  # mostly padding
  assert conv((1, 32, 64, 2048), 512, 3, padding=1) is None  # too few pixels to pay
  assert conv((1, 64, 64, 2048), 512, 3, padding=1) == 'winograd'
  assert conv((2, 64, 128, 256), 256, 3, padding=2, dilation=2) == 'tap_grad'  # < 512 channels
  assert conv((2, 64, 128, 128), 128, 3, padding=1) is None  # XLA's kernel gradient is as fast
  assert conv((2, 128, 256, 270), 512, 3, padding=1) == 'tap_grad'  # OCRNet's bottleneck
  assert conv((2, 128, 256, 128), 128, 3, padding=1) == 'tap_grad'
  assert conv((2, 64, 128, 256), 256, 3, padding=1) == 'tap_grad'
  assert conv((2, 128, 256, 64), 64, 3, padding=1) is None  # ResNet's layer1
  assert conv((2, 128, 256, 256), 18, 3, padding=1) is None  # HRNet's transition1
  assert conv((2, 256, 512, 32), 64, 3, padding=1) == 'tap_grad'
  assert conv((2, 511, 1023, 3), 32, 3, padding=1, stride=2) == 'tap_grad'
  assert conv((16, 8, 8, 64), 64, 3, padding=2, dilation=2) is None  # the quick start's
  assert conv((1, 64, 128, 2048), 512, 1) == 'pointwise'
  assert conv((1, 63, 127, 64), 256, 1, stride=2) == 'pointwise'
  assert conv((1, 64, 128, 512), 512, 1, padding=1) == 'pointwise'  # PSANet's projection
  assert conv((1, 64, 128, 512), 512, 1, padding=1, stride=2) is None
  assert conv((1, 64, 128, 2048), 512, 3, padding=1, stride=2) is None
  assert conv((2, 512, 1024, 64), 64, 3, padding=1, stride=(1, 2)) is None
  assert conv((1, 64, 128, 2048), 512, 3, padding=1, dtype=jnp.bfloat16) is None
  assert conv((1, 64, 128, 560), 560, 3, padding=1, groups=560) == 'depthwise'
  assert conv((1, 64, 128, 560), 560, 3, padding=1, groups=560, dtype=jnp.bfloat16) is None
  # lax's own form of the dimension numbers (flax passes ConvDimensionNumbers)
  x, k = jnp.zeros((1, 64, 64, 512)), jnp.zeros((3, 3, 512, 8))
  assert cpu_conv.rewrite_for(x, k, (1, 1), [(1, 1)] * 2, None, None, ('NHWC', 'HWIO', 'NHWC'),
                              1, 1, None) == 'winograd'
  assert cpu_conv.rewrite_for(x, k, (1, 1), [(1, 1)] * 2, None, None, ('NCHW', 'OIHW', 'NCHW'),
                              1, 1, None) is None
  monkeypatch.setenv('JSEG_CPU_CONV', '0')
  assert conv((1, 64, 128, 2048), 512, 3, padding=1) is None


def test_no_rewrite_on_accelerators(monkeypatch):
  conv = kinds(monkeypatch, backend='gpu')
  assert conv((1, 64, 128, 2048), 512, 3, padding=1) is None
  assert conv((1, 64, 128, 560), 560, 3, padding=1, groups=560) is None


def test_model_with_the_rewrites_equals_mmseg(monkeypatch):
  """FCN R-18-D8 at a size where Winograd runs (stage 4 at dilation 4 and the head: maps of
  49 x 65, 6370 pixels) has MMSeg's eval logits; the parity tests' small maps stay below
  WINOGRAD_MIN_PIXELS."""
  picked = []
  original = cpu_conv.rewrite_for
  monkeypatch.setattr(cpu_conv, 'rewrite_for',
                      lambda *a: picked.append(original(*a)) or picked[-1])
  parity.assert_eval_logits_equal(*parity.pair(*parity.FCN_R18), sizes=((385, 513),))
  assert picked.count('winograd') == 5 and 'pointwise' in picked, picked


def test_materialized_is_exact_and_cuts_fusion(monkeypatch):
  """``materialized(x)`` is ``x`` bit for bit (a NaN first element, -0.0, infinities) with ``x``'s
  gradient, under a conditional on the CPU (what stops XLA's fusion), and ``x`` itself where
  the rewrites are off."""
  x = jnp.asarray([[np.nan, -0.0, np.inf], [-np.inf, 1e-45, -3.5]], jnp.float32)
  for v in (x, x.at[0, 0].set(2.0)):
    got = jax.jit(cpu_conv.materialized)(v)
    np.testing.assert_array_equal(np.asarray(got).view(np.uint32), np.asarray(v).view(np.uint32))
  w = random((4, 5), jnp.float32, 0)
  grad = jax.grad(lambda v: jnp.sum(cpu_conv.materialized(v * 3.0) * w))(
      random((4, 5), jnp.float32, 1))
  np.testing.assert_array_equal(grad, w * 3.0)

  def hlo():  # a fresh function: a new trace
    return jax.jit(lambda v: cpu_conv.materialized(v)).lower(w).compile().as_text()
  assert 'conditional' in hlo()
  monkeypatch.setenv('JSEG_CPU_CONV', '0')
  assert 'conditional' not in hlo()


def test_materialized_pad_keeps_its_conditional():
  """``materialized(x, pad)``: the padded ``x`` exactly, still under a conditional after XLA's
  simplification (a predicate read from the zero pad's first element was folded away, and the
  depthwise convolution's 9 windows each redid the pad)."""
  x = random((2, 5, 7, 3), jnp.float32, 0)
  pad = lambda v: jnp.pad(v, ((0, 0), (1, 1), (1, 1), (0, 0)))  # noqa: E731
  np.testing.assert_array_equal(jax.jit(cpu_conv.materialized, static_argnums=1)(x, pad), pad(x))
  k = random((3, 3, 1, 3), jnp.float32, 1)
  text = jax.jit(lambda x: cpu_conv.depthwise_conv3x3(x, k, 1, 1)).lower(x).compile().as_text()
  assert ' conditional(' in text
