"""Building blocks that compute exactly what their PyTorch / MMCV namesakes do (NHWC).

Resizing and adaptive pooling are written as separable matrix products whose
weights are built on the host from torch's index formulas: exact for every size
and both ``align_corners`` settings, and fast on any XLA backend.
"""
import functools
from typing import Optional, Sequence, Tuple, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jseg.models import cpu_conv


# MMCV's ConvModule initialises convolutions with kaiming normal, fan_out, relu gain.
kaiming_fan_out = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')


def _pair(v) -> Tuple[int, int]:
  return (v, v) if isinstance(v, int) else tuple(v)


def stats_dtype(dtype) -> jnp.dtype:
  """The dtype of statistics, softmax and losses for activations of ``dtype``: float32, or
  float64 for float64 (promoted, never cast down, so that a float64 run is float64)."""
  return jnp.promote_types(dtype, jnp.float32)


def matmul_precision(dtype) -> Optional[jax.lax.Precision]:
  """``HIGHEST`` for float32 and float64 (MMSeg's numbers: no TF32 or bfloat16 passes on
  GPUs and TPUs), the hardware's native rate (``None``) for bfloat16 and float16."""
  return jax.lax.Precision.HIGHEST if jnp.dtype(dtype).itemsize >= 4 else None


def compute_dtype(*operands) -> jnp.dtype:
  """The dtype an op computes in: a 16-bit float operand's (the precision policy's activations,
  to which float32 parameters and softmax weights are cast), else the promoted one."""
  dtypes = [jnp.dtype(o.dtype) for o in operands]
  low = [d for d in dtypes if jnp.issubdtype(d, jnp.floating) and d.itemsize == 2]
  return low[0] if low else jnp.result_type(*dtypes)


def einsum(spec: str, *operands) -> jax.Array:
  """``jnp.einsum`` in :func:`compute_dtype` at :func:`matmul_precision`."""
  dtype = compute_dtype(*operands)
  return jnp.einsum(spec, *(o.astype(dtype) for o in operands),
                    precision=matmul_precision(dtype))


def attend(spec: str, weights: jax.Array, values: jax.Array) -> jax.Array:
  """The attention-weighted sum ``einsum(spec, weights, values)`` in :func:`compute_dtype`,
  accumulated and returned in :func:`stats_dtype` (float32 under bfloat16 / float16).

  A context that averages many positions is nearly the same at every pixel; rounded to
  bfloat16 its error exceeds its variation between pixels, which the out projection's
  BatchNorm then scales up. So the context stays float32 through the out projection, and
  the block returns to the policy dtype after it.
  """
  dtype = compute_dtype(weights, values)
  return jnp.einsum(spec, weights.astype(dtype), values.astype(dtype),
                    precision=matmul_precision(dtype),
                    preferred_element_type=stats_dtype(dtype))


def softmax(x: jax.Array, axis: int = -1) -> jax.Array:
  """Softmax in :func:`stats_dtype` (float32 for bfloat16 / float16 ``x``), returned as ``x``'s
  dtype."""
  return jax.nn.softmax(x.astype(stats_dtype(x.dtype)), axis=axis).astype(x.dtype)


def is_static(*dims) -> bool:
  """Whether sizes are Python ints; else symbolic (``jax.export``'s shape polymorphism), and the
  weights below are computed in the program instead of on the host, by the same formulas."""
  return all(isinstance(d, (int, np.integer)) for d in dims)


def arange(xp, n, dtype):
  """``xp.arange(n, dtype=dtype)``; for a symbolic ``n`` as the ``iota`` primitive itself, whose
  size every tracer of the program keeps (jax2onnx's ``jnp.arange`` loses it)."""
  return np.arange(n, dtype=dtype) if xp is np else jax.lax.iota(dtype, n)


def _bilinear_matrix(n_in, n_out, align_corners: bool, scale_factor: Optional[float],
                     dtype) -> np.ndarray:
  """(n_out, n_in) interpolation weights of torch's 1-d linear upsampling.

  Source coordinates are computed as torch's CPU kernel does: in float64 for float64
  inputs, in float32 otherwise. Static sizes give a numpy constant, symbolic ones a traced
  array of the same values.
  """
  xp = np if is_static(n_in, n_out) else jnp
  ft = np.dtype(stats_dtype(dtype)).type
  dst = arange(xp, n_out, ft)
  f_in, f_out = xp.asarray(n_in, ft), xp.asarray(n_out, ft)
  if align_corners:
    scale = (f_in - ft(1)) / xp.maximum(f_out - ft(1), ft(1)) if n_out != 1 else ft(0)
    src = dst * scale
  else:
    scale = ft(1.0 / scale_factor) if scale_factor else f_in / f_out
    product = scale * (dst + ft(0.5))
    if xp is jnp:  # torch rounds the product before the subtraction: no fused multiply-add
      product = jax.lax.cond(product[0] == product[0], lambda p: p, lambda p: p * 1, product)
    src = xp.maximum(product - ft(0.5), ft(0))
  last = xp.asarray(n_in, np.int32) - 1  # an array: jax2onnx misreads a repeated n_in - 1
  i0 = xp.minimum(xp.floor(src).astype(np.int32), last)
  i1 = xp.minimum(i0 + 1, last)
  lam = (src - i0.astype(ft)).astype(ft)
  columns = arange(xp, n_in, np.int32)
  rows = lambda v: xp.expand_dims(v, 1)
  # Where i0 == i1 (the last source pixel) the two weights add, as torch's kernel adds them.
  return (((rows(i0) == columns) * rows(ft(1) - lam)).astype(ft)
          + ((rows(i1) == columns) * rows(lam)).astype(ft))


def _separable(x: jax.Array, wh, ww) -> jax.Array:
  """``wh`` along H, then ``ww`` along W, in :func:`stats_dtype` and rounded to ``x.dtype``
  once, as torch's interpolation and adaptive pooling kernels do for 16-bit inputs."""
  acc = stats_dtype(x.dtype)
  y = einsum('oh,nhwc->nowc', jnp.asarray(wh, acc), x.astype(acc))
  return einsum('pw,nhwc->nhpc', jnp.asarray(ww, acc), y).astype(x.dtype)


def _scaled(n, factor: Optional[float]):
  """``floor(n * factor)`` (torch's output size for a scale factor); a symbolic ``n`` takes
  whole factors only."""
  if is_static(n):
    return int(np.floor(n * factor))
  if float(factor) != int(factor):
    raise ValueError(f'a symbolic size {n} scales by whole factors only, not {factor}')
  return n * int(factor)


def resize(x: jax.Array,
           size: Optional[Sequence[int]] = None,
           scale_factor: Optional[Union[float, Sequence[float]]] = None,
           align_corners: bool = False) -> jax.Array:
  """Bilinear resize of NHWC ``x``, equal to ``F.interpolate(mode='bilinear')``.

  Give either the output ``size`` (h, w) or a ``scale_factor``; like torch, a
  scale factor sets the source coordinate scale to ``1 / scale_factor``.
  """
  h, w = x.shape[1:3]
  if size is None:
    sf = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * 2
    size = (_scaled(h, sf[0]), _scaled(w, sf[1]))
  else:
    sf = (None, None)
  size = tuple(int(s) if is_static(s) else s for s in size)
  if size == (h, w) and not any(sf):
    return x
  wh = _bilinear_matrix(h, size[0], align_corners, sf[0], x.dtype)
  ww = _bilinear_matrix(w, size[1], align_corners, sf[1], x.dtype)
  return _separable(x, wh, ww)


def _adaptive_pool_matrix(n_in, n_out: int):
  """(n_out, n_in) averaging weights over torch's adaptive pooling bins (floor / ceil edges);
  a numpy constant for a static ``n_in``, a traced array for a symbolic one."""
  if is_static(n_in):
    w = np.zeros((n_out, n_in), np.float64)
    for i in range(n_out):
      start = (i * n_in) // n_out
      end = -((-(i + 1) * n_in) // n_out)
      w[i, start:end] = 1.0 / (end - start)
    return w
  i, size = jnp.expand_dims(arange(jnp, n_out, np.int32), 1), jnp.asarray(n_in, np.int32)
  start, end = (i * size) // n_out, -((-(i + 1) * size) // n_out)
  columns = jnp.expand_dims(arange(jnp, n_in, np.int32), 0)
  return ((columns >= start) & (columns < end)) / (end - start).astype(jnp.float32)


def adaptive_avg_pool(x: jax.Array, output_size: Union[int, Sequence[int]]) -> jax.Array:
  """``nn.AdaptiveAvgPool2d(output_size)`` on NHWC ``x`` (torch's bin edges)."""
  oh, ow = _pair(output_size)
  h, w = x.shape[1:3]
  return _separable(x, _adaptive_pool_matrix(h, oh), _adaptive_pool_matrix(w, ow))


class BatchNorm(nn.Module):
  """``nn.BatchNorm2d`` (momentum 0.1, eps 1e-5, unbiased running variance).

  Statistics are taken over every axis but the last; under ``jax.jit`` with a
  batch sharded over a mesh they are global, i.e. this is SyncBN.
  """
  momentum: float = 0.1
  epsilon: float = 1e-5
  scale_init: nn.initializers.Initializer = nn.initializers.ones

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    c = x.shape[-1]
    scale = self.param('scale', self.scale_init, (c,), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (c,), jnp.float32)
    running_mean = self.variable('batch_stats', 'mean', jnp.zeros, (c,), jnp.float32)
    running_var = self.variable('batch_stats', 'var', jnp.ones, (c,), jnp.float32)
    if train:
      axes = tuple(range(x.ndim - 1))
      xf = x.astype(stats_dtype(x.dtype))
      mean = xf.mean(axes)
      var = jnp.square(xf - mean).mean(axes)
      if not self.is_initializing():
        n = x.size // c
        m = self.momentum
        running_mean.value = (1 - m) * running_mean.value + m * mean
        running_var.value = (1 - m) * running_var.value + m * var * (n / max(n - 1, 1))
    else:
      mean, var = running_mean.value, running_var.value
    mul = scale * jax.lax.rsqrt(var + self.epsilon)
    return (x.astype(mul.dtype) * mul + (bias - mean * mul)).astype(x.dtype)


def conv2d(x: jax.Array, features: int, kernel_size: int, *, stride: int = 1,
           padding: int = 0, dilation: int = 1, groups: int = 1, use_bias: bool = True,
           kernel_init=kaiming_fan_out, torch_init: bool = False, out_dtype=None,
           name: Optional[str] = None) -> jax.Array:
  """``nn.Conv2d`` with symmetric integer padding, created in the calling module; it computes
  in ``x``'s dtype (float32 weights cast to it) at :func:`matmul_precision`.

  ``out_dtype``: the dtype the products are accumulated and returned in (``x``'s by default);
  the classifiers return float32 logits from bfloat16 features this way, one rounding fewer.

  ``torch_init``: ``nn.Conv2d``'s own initialization instead of ``kernel_init`` and a zero
  bias (weights and bias uniform in +-1/sqrt(fan_in)), which MMSeg's plain convolutions keep.
  """
  bias_init = nn.initializers.zeros
  if torch_init:
    bound = (x.shape[-1] // groups * np.prod(_pair(kernel_size))) ** -0.5
    kernel_init = nn.initializers.variance_scaling(1 / 3, 'fan_in', 'uniform')
    bias_init = lambda key, shape, dtype=jnp.float32: jax.random.uniform(  # noqa: E731
        key, shape, dtype, -bound, bound)
  return nn.Conv(features, _pair(kernel_size), strides=_pair(stride),
                 padding=[(padding, padding)] * 2, kernel_dilation=_pair(dilation),
                 feature_group_count=groups, use_bias=use_bias, kernel_init=kernel_init,
                 bias_init=bias_init, dtype=x.dtype, precision=matmul_precision(x.dtype),
                 conv_general_dilated=functools.partial(cpu_conv.conv_general_dilated,
                                                        preferred_element_type=out_dtype),
                 name=name)(x)


class Group(nn.Module):
  """A named container like torch's ``nn.Sequential`` / ``nn.ModuleList``.

  ``Group(name='convs')(fn, *args)`` calls ``fn(*args)``; the layers ``fn``
  creates (named ``'0'``, ``'1'``, ...) live under ``convs``, as in MMSeg's keys.
  """

  @nn.compact
  def __call__(self, fn, *args):
    return fn(*args)


class ConvModule(nn.Module):
  """MMCV's ConvModule: conv (bias only without norm) -> BN -> ReLU."""
  features: int
  kernel_size: int = 1
  stride: int = 1
  padding: int = 0
  dilation: int = 1
  groups: int = 1
  norm: bool = True
  act: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = conv2d(x, self.features, self.kernel_size, stride=self.stride,
               padding=self.padding, dilation=self.dilation, groups=self.groups,
               use_bias=not self.norm, name='conv')
    if self.norm:
      x = BatchNorm(name='bn')(x, train)
    return nn.relu(x) if self.act else x


class DepthwiseSeparableConvModule(nn.Module):
  """MMCV's DepthwiseSeparableConvModule: depthwise ConvModule, pointwise ConvModule."""
  features: int
  kernel_size: int = 3
  padding: int = 0
  dilation: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = ConvModule(x.shape[-1], self.kernel_size, padding=self.padding,
                   dilation=self.dilation, groups=x.shape[-1],
                   name='depthwise_conv')(x, train)
    return ConvModule(self.features, 1, name='pointwise_conv')(x, train)


def dropout2d(x: jax.Array, rate: float, train: bool) -> jax.Array:
  """``nn.Dropout2d``: drops whole channels; identity in eval mode or at rate <= 0.

  MMSeg builds no dropout for ``dropout_ratio <= 0`` (HRNet's heads use -1).
  """
  if rate <= 0:
    return x
  return nn.Dropout(rate, broadcast_dims=(1, 2), deterministic=not train)(x)


class Scale(nn.Module):
  """MMCV's ``Scale``: ``x`` times one learnable scalar (DANet's and CCNet's ``gamma``).

  The parameter is named ``scalar`` (MMSeg: ``<name>.scale``), so that it is not
  taken for a BatchNorm ``scale`` (MMSeg: ``weight``) by the converter.
  """
  init_value: float = 1.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    scalar = self.param('scalar', nn.initializers.constant(self.init_value), (), jnp.float32)
    return x * scalar.astype(x.dtype)
