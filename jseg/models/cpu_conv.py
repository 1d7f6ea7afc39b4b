"""Exact rewrites of the convolutions that XLA:CPU computes slowly, used on the CPU only.

XLA:CPU computes convolutions as Eigen tensor contractions: large-channel 3x3 convolutions
run at ~60% of oneDNN's rate, large dilations slower still (3.5x torch at dilation 36) and
depthwise ones at ~1 GFLOP/s (docs/benchmark.md). Two rewrites compute the same products
summed in another order (within float rounding of ``lax.conv_general_dilated``; float32 and
float64 only, so the bfloat16 policy is untouched):

- 3x3 stride-1 convolutions with many input channels (any dilation) as Winograd
  F(2x2, 3x3): 16 batched GEMMs with 2.25x fewer multiplications than the direct
  convolution. A dilation ``d`` becomes ``d * d`` interleaved undilated problems by a
  reshape (no gather).
- depthwise 3x3 convolutions as the sum of the 9 shifted inputs times their per-channel
  weights, with their own gradient (the same sums).
- 1x1 convolutions as one (pixels x channels) matrix product (zero-padded first if padded).
- the other 3x3 convolutions on large maps (or wide ones on mid-sized maps) keep XLA's
  convolution forward and for the input gradient; their kernel gradient (XLA:CPU: a
  convolution with an output-sized window, slow for large maps, dilated kernels and many
  channels) becomes 9 matrix products, one per tap: shifted input^T @ output gradient.

And :func:`materialized` makes XLA:CPU write a residual block's output once instead of
recomputing it in every consumer (HRNet W18's train step 2.6x faster).

Everything else, and everything on other backends (GPU and TPU keep XLA's native
convolution and the same HLO), goes to ``lax.conv_general_dilated``. The choice is made at
trace time from ``jax.default_backend()``; ``JSEG_CPU_CONV=0`` turns the rewrites off.
"""
import contextlib
import functools
import os

import jax
import jax.numpy as jnp
from jax import lax

# Winograd pays for its transforms from this many input channels on (measured on a 2-core
# CPU, 64x128 maps: 512 -> 512 at dilation 4 1.1-1.3x faster than XLA, 256 -> 256 slower).
WINOGRAD_MIN_IN_CHANNELS = 512
# ... and while padding the output up to whole (2d x 2d) tiles adds at most this factor ...
WINOGRAD_MAX_TILE_WASTE = 1.6
# ... and from this many output pixels (N x H x W) on: below, the convolution takes
# milliseconds either way and Winograd's transforms only add compile time (2x a forward's).
WINOGRAD_MIN_PIXELS = 4096
# The tap-product kernel gradient pays from this many output pixels (N x H x W) on, or from
# the second number on at a dilation > 1 (2 cores: 32 -> 64 channels at 2 x 256 x 512 0.56x
# XLA's time, 256 -> 256 at dilation 2 and 2 x 64 x 128 0.60x; 128 -> 128 undilated at
# 2 x 64 x 128 1.3x and the quick start's small maps 1.1-1.6x, so XLA keeps those) ...
TAP_GRAD_MIN_PIXELS, TAP_GRAD_MIN_PIXELS_DILATED = 131072, 16384
# ... and undilated from (pixels, input x output channels) on: XLA:CPU's kernel gradient slows
# with the map and the channels (fwd + bwd at 2 x 128 x 256: 270 -> 512, OCRNet's bottleneck,
# 0.44x XLA's time, 128 -> 128 0.53x, 64 -> 64 1.55x, 256 -> 18 1.6x; at 2 x 64 x 128:
# 270 -> 512 0.75x, 256 -> 256 0.91x, 128 -> 128 1.28x).
TAP_GRAD_MIN_PIXELS_WIDE = ((65536, 128 * 128), (16384, 256 * 256))


_PORTABLE = []  # non-empty while tracing for any backend (:func:`portable`)


def enabled() -> bool:
  """Whether convolutions traced now use the CPU rewrites."""
  return (jax.default_backend() == 'cpu' and os.environ.get('JSEG_CPU_CONV', '1') != '0'
          and not _PORTABLE)


@contextlib.contextmanager
def portable():
  """Traces XLA's own convolutions inside, whatever the backend: for programs that leave this
  process (``jax.export`` for CPU and CUDA), which also need no size thresholds."""
  _PORTABLE.append(True)
  try:
    yield
  finally:
    _PORTABLE.pop()


def materialized(x: jax.Array, fn=lambda v: v) -> jax.Array:
  """``fn(x)`` (default ``x``), written to memory once on the CPU (elsewhere ``fn(x)`` itself).

  XLA:CPU's fusion recomputes cheap elementwise producers inside every consumer. On a residual
  stream that chains back through every block: the backward's transposing copies of HRNet's
  18-channel stream each re-evaluated a dozen blocks' BN and additions per element (16 of HRNet
  W18's 28 thread-seconds per train step at 2 x 512 x 1024; with this at each block's output
  the step took 7.6 s instead of 19.9). An optimization barrier does not stop that on the CPU
  (XLA removes it before fusion); a conditional does, as fusion does not cross it. Both
  branches return ``fn(x)`` exactly (of ``x * 1`` only for a NaN first element). The predicate
  reads ``x``, not ``fn(x)``: a zero pad's constant first element would let XLA fold it and
  drop the conditional.
  """
  if not enabled():
    return fn(x)
  first = x.reshape(-1)[0]
  return lax.cond(first == first, fn, lambda v: fn(v * 1), x)


def _bt(r0, r1, r2, r3):
  """Winograd F(2, 3)'s input transform B^T along one axis."""
  return r0 - r2, r1 + r2, r2 - r1, r1 - r3


def _g(g0, g1, g2):
  """Winograd F(2, 3)'s kernel transform G along one axis."""
  return g0, (g0 + g1 + g2) * 0.5, (g0 - g1 + g2) * 0.5, g2


def _at(m0, m1, m2, m3):
  """Winograd F(2, 3)'s output transform A^T along one axis."""
  return m0 + m1 + m2, m1 - m2 - m3


def _tiles(size: int, padding: int, d: int):
  """(output size, number of 2d-row tiles, rows of padding after) along one axis."""
  out = size + 2 * padding - 2 * d
  tiles = -(-out // (2 * d))
  return out, tiles, (2 * tiles + 2) * d - size - padding


def winograd_waste(h: int, w: int, padding: int, d: int) -> float:
  """Computed outputs per wanted output of :func:`winograd_conv3x3` (whole tiles)."""
  (ho, th, _), (wo, tw, _) = _tiles(h, padding, d), _tiles(w, padding, d)
  return (2 * d * th) * (2 * d * tw) / max(ho * wo, 1)


def winograd_conv3x3(x: jax.Array, w: jax.Array, padding: int, dilation: int = 1,
                     precision=None) -> jax.Array:
  """3x3 stride-1 convolution of NHWC ``x`` with HWIO ``w`` (symmetric ``padding``,
  ``dilation``) as Winograd F(2x2, 3x3).

  Output row ``o = 2d t + d j + r`` (tile ``t``, ``j`` in {0, 1}, ``r < d``) reads input rows
  ``d (2t + j + k) + r`` of the padded input, ``k < 3``: reshaped to ``(t, 2, d)``, each
  residue ``r`` is an undilated problem, and the 4 input rows of tile ``t`` are the even and
  odd rows ``t`` and ``t + 1``. Likewise for columns.
  """
  n, h, wd, c = x.shape
  d = dilation
  (ho, th, pb), (wo, tw, pr) = _tiles(h, padding, d), _tiles(wd, padding, d)
  xp = jnp.pad(x, ((0, 0), (padding, pb), (padding, pr), (0, 0)))
  xr = xp.reshape(n, th + 1, 2, d, tw + 1, 2, d, c)
  even, odd = xr[:, :, 0], xr[:, :, 1]
  rows = jnp.stack(_bt(even[:, :th], odd[:, :th], even[:, 1:], odd[:, 1:]))
  even, odd = rows[..., 0, :, :], rows[..., 1, :, :]
  v = jnp.stack(_bt(even[:, :, :, :, :tw], odd[:, :, :, :, :tw],
                    even[:, :, :, :, 1:], odd[:, :, :, :, 1:]), axis=1)
  u = jnp.stack(_g(*jnp.stack(_g(w[0], w[1], w[2])).swapaxes(0, 1)), axis=1)
  m = jnp.einsum('bmc,bco->bmo', v.reshape(16, -1, c), u.reshape(16, c, -1).astype(x.dtype),
                 precision=precision)
  m = m.reshape(4, 4, n, th, d, tw, d, -1)
  m = jnp.stack(_at(*m), axis=3)  # (4, n, th, 2, d, tw, d, o): rows done
  y = jnp.stack(_at(*m), axis=5)  # (n, th, 2, d, tw, 2, d, o)
  return y.reshape(n, 2 * d * th, 2 * d * tw, -1)[:, :ho, :wo]


def _pad_hw(x: jax.Array, padding: int) -> jax.Array:
  """``x`` (NHWC) padded with zeros by ``padding`` on each side of H and W (< 0 crops), written
  out once (:func:`materialized`): the 9 windows then read it instead of each redoing the pad."""
  return materialized(x, lambda v: lax.pad(v, jnp.zeros((), v.dtype), [
      (0, 0, 0), (padding, padding, 0), (padding, padding, 0), (0, 0, 0)]))


def _taps(xp: jax.Array, ho: int, wo: int, d: int):
  """The 9 (i, j, window of padded ``xp`` at (i d, j d) of size ho x wo)."""
  return [(i, j, xp[:, i * d:i * d + ho, j * d:j * d + wo]) for i in range(3) for j in range(3)]


def _depthwise_taps_sum(xp: jax.Array, w: jax.Array, ho: int, wo: int, d: int) -> jax.Array:
  out = None
  for i, j, window in _taps(xp, ho, wo, d):
    out = window * w[i, j, 0] if out is None else out + window * w[i, j, 0]
  return out


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def depthwise_conv3x3(x: jax.Array, w: jax.Array, padding: int, dilation: int = 1) -> jax.Array:
  """Depthwise 3x3 stride-1 convolution of NHWC ``x`` with HWIO ``w`` (3, 3, 1, C): the sum
  of the 9 shifted inputs times their per-channel weights.

  Its own gradient, so that training keeps only ``x`` (autodiff of the sum kept the 9
  shifted inputs for the kernel gradient, each a pad-and-slice pass that redid its producer:
  DeepLabV3+ R-50-D8's train step at 2 x 256 x 512 took 9.05 s, 7.22 s with this). The input
  gradient is the same sum over the output gradient with the kernel flipped; the kernel
  gradient 9 per-channel sums of window x output gradient.
  """
  _, h, wd, _ = x.shape
  d = dilation
  return _depthwise_taps_sum(_pad_hw(x, padding), w.astype(x.dtype),
                             h + 2 * padding - 2 * d, wd + 2 * padding - 2 * d, d)


def _depthwise_fwd(x, w, padding, dilation):
  return depthwise_conv3x3(x, w, padding, dilation), (x, w)


def _depthwise_bwd(padding, d, residuals, g):
  x, w = residuals
  _, h, wd, _ = x.shape
  ho, wo = g.shape[1:3]
  dx = _depthwise_taps_sum(_pad_hw(g, 2 * d - padding), w[::-1, ::-1].astype(g.dtype), h, wd, d)
  dw = jnp.stack([jnp.sum(window * g, axis=(0, 1, 2))
                  for _, _, window in _taps(_pad_hw(x, padding), ho, wo, d)])
  return dx, dw.reshape(w.shape).astype(w.dtype)


depthwise_conv3x3.defvjp(_depthwise_fwd, _depthwise_bwd)


def pointwise_conv(x: jax.Array, w: jax.Array, stride: int = 1, precision=None,
                   padding: int = 0) -> jax.Array:
  """1x1 convolution of NHWC ``x`` with HWIO ``w`` as a 2-D matrix product (its kernel gradient
  is then one (C x pixels) @ (pixels x O) product, 2x faster than a 4-D one). ``padding``
  (stride 1) zero-pads ``x`` first: the border's outputs are 0, as the convolution's (PSANet's
  padded projection, whose kernel gradient XLA:CPU took 34 s for at 2 x 512 x 1024)."""
  if padding:
    x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  x = x[:, ::stride, ::stride]
  y = jnp.dot(x.reshape(-1, x.shape[-1]), w[0, 0].astype(x.dtype), precision=precision)
  return y.reshape(*x.shape[:-1], -1)


def _xla_conv(x, w, stride, padding, dilation, precision):
  return lax.conv_general_dilated(x, w, (stride, stride), [(padding, padding)] * 2,
                                  rhs_dilation=(dilation, dilation),
                                  dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
                                  precision=precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def tap_grad_conv3x3(x: jax.Array, w: jax.Array, stride: int, padding: int, dilation: int,
                     precision=None) -> jax.Array:
  """XLA's 3x3 convolution of NHWC ``x`` with HWIO ``w`` whose kernel gradient is 9 matrix
  products: tap (i, j) is the strided window of the padded input at (i d, j d), transposed,
  times the output gradient, summed over all pixels."""
  return _xla_conv(x, w, stride, padding, dilation, precision)


def _tap_grad_fwd(x, w, stride, padding, dilation, precision):
  return _xla_conv(x, w, stride, padding, dilation, precision), (x, w)


def _tap_grad_bwd(stride, padding, dilation, precision, residuals, dy):
  x, w = residuals
  _, grad_x = jax.vjp(lambda x: _xla_conv(x, w, stride, padding, dilation, precision), x)
  n, ho, wo, o = dy.shape
  c = x.shape[-1]
  xp = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  dy = dy.reshape(-1, o)
  taps = [jnp.dot(lax.slice(xp, (0, i * dilation, j * dilation, 0),
                            (n, i * dilation + stride * (ho - 1) + 1,
                             j * dilation + stride * (wo - 1) + 1, c),
                            (1, stride, stride, 1)).reshape(-1, c).T, dy, precision=precision)
          for i in range(3) for j in range(3)]
  return grad_x(dy.reshape(n, ho, wo, o))[0], jnp.stack(taps).reshape(w.shape).astype(w.dtype)


tap_grad_conv3x3.defvjp(_tap_grad_fwd, _tap_grad_bwd)


def rewrite_for(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
             dimension_numbers, feature_group_count, batch_group_count, preferred_element_type):
  """'pointwise', 'winograd', 'depthwise', 'tap_grad' or None for a ``conv_general_dilated``
  call."""
  if not enabled() or lhs.ndim != 4 or rhs.shape[:2] not in ((1, 1), (3, 3)):
    return None
  if lhs.dtype not in (jnp.float32, jnp.float64) or rhs.dtype != lhs.dtype:
    return None
  if preferred_element_type not in (None, lhs.dtype) or batch_group_count != 1:
    return None
  nhwc = ('NHWC', 'HWIO', 'NHWC')
  if (lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
      != lax.conv_dimension_numbers(lhs.shape, rhs.shape, nhwc)):
    return None
  if tuple(lhs_dilation or (1, 1)) != (1, 1) or isinstance(padding, str):
    return None
  d = tuple(rhs_dilation or (1, 1))
  p = {tuple(q) for q in padding}
  if d[0] != d[1] or len(p) != 1 or len(next(iter(p))) != 2 or len(set(next(iter(p)))) != 1:
    return None
  pad = next(iter(p))[0]
  s = tuple(window_strides)
  if rhs.shape[:2] == (1, 1):
    return ('pointwise' if feature_group_count == 1 and s[0] == s[1] and (pad == 0 or s[0] == 1)
            else None)
  c = lhs.shape[-1]
  if s == (1, 1) and feature_group_count == c and rhs.shape[2:] == (1, c):
    return 'depthwise'
  if feature_group_count != 1 or s[0] != s[1]:
    return None
  pixels = lhs.shape[0] * -(-lhs.shape[1] // s[0]) * -(-lhs.shape[2] // s[1])
  if (s == (1, 1) and c >= WINOGRAD_MIN_IN_CHANNELS and pixels >= WINOGRAD_MIN_PIXELS
      and winograd_waste(lhs.shape[1], lhs.shape[2], pad, d[0]) <= WINOGRAD_MAX_TILE_WASTE):
    return 'winograd'
  if pixels >= (TAP_GRAD_MIN_PIXELS if d[0] == 1 else TAP_GRAD_MIN_PIXELS_DILATED):
    return 'tap_grad'
  if any(pixels >= p and c * rhs.shape[-1] >= co for p, co in TAP_GRAD_MIN_PIXELS_WIDE):
    return 'tap_grad'
  return None


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         batch_group_count=1, precision=None, preferred_element_type=None):
  """``lax.conv_general_dilated`` with the CPU rewrites above where they apply."""
  kind = rewrite_for(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                  dimension_numbers, feature_group_count, batch_group_count,
                  preferred_element_type)
  if kind == 'pointwise':
    return pointwise_conv(lhs, rhs, window_strides[0], precision, padding[0][0])
  if kind == 'winograd':
    return winograd_conv3x3(lhs, rhs, padding[0][0], (rhs_dilation or (1, 1))[0], precision)
  if kind == 'depthwise':
    return depthwise_conv3x3(lhs, rhs, padding[0][0], (rhs_dilation or (1, 1))[0])
  if kind == 'tap_grad':
    return tap_grad_conv3x3(lhs, rhs, window_strides[0], padding[0][0],
                            (rhs_dilation or (1, 1))[0], precision)
  return lax.conv_general_dilated(
      lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
      dimension_numbers=dimension_numbers, feature_group_count=feature_group_count,
      batch_group_count=batch_group_count, precision=precision,
      preferred_element_type=preferred_element_type)
