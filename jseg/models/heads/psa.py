"""PSAHead (PSANet): point-wise spatial attention, collect and distribute branches.

MMSeg's ``psa_head.py`` with mmcv's ``PSAMask`` written as pads, slices and reshapes: the
attention map predicts, for every feature pixel, a ``mask_size`` window of
weights centred on it; PSAMask places that window into a dense
(pixels x pixels) attention matrix.
"""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jseg.models.heads.decode_head import DecodeHead
from jseg.models.layers import ConvModule, Group, conv2d, einsum, is_static, resize, softmax

PSA_TYPES = ('collect', 'distribute', 'bi-direction')


def _window(a: jax.Array, axis: int, size, half: int) -> jax.Array:
  """The 2 * size entries ``a[..., j + half - size + 1, ...]`` (j = 0 .. 2 * size - 1) of the
  mask ``axis``, zero outside the mask: the offsets q - p + half of 0 <= p, q < size (shifted by
  size - 1; j = 2 * size - 1 is a spare). Static sizes pad or slice exactly; symbolic ones, whose
  size - 1 - half has no known sign, pad by size - 1 and size + 1, then slice from ``half``."""
  static = is_static(size)
  if static:
    lo, start = max(0, size - 1 - half), max(0, half - size + 1)
    hi = max(0, start + 2 * size - lo - a.shape[axis])
  else:
    lo, start, hi = size - 1, half, size + 1
  if not static or lo or hi:
    config = [(0, 0, 0)] * a.ndim
    config[axis] = (lo, hi, 0)
    a = jax.lax.pad(a, jnp.zeros((), a.dtype), config)
  return jax.lax.slice_in_dim(a, start, start + 2 * size, axis=axis)


def _skew(a: jax.Array) -> jax.Array:
  """(B, P, X, 2P, R) -> (B, P, X, P, R): ``out[b, p, x, q] = a[b, p, x, q - p + P - 1]``.

  By reshapes: with each p's row of S = X * 2P offsets (of R entries) padded by one, rows of
  S + 1 flattened and read back in rows of S, row p starts p offsets further on, so its
  entry x * 2P + t is ``a[p, x, t - p]`` (t >= p); t = q + P - 1 are the ones kept. R stays
  the last axis throughout: every slice bound is linear in P, as ``jax.export`` can check.
  """
  b, p, x, l, r = a.shape
  rows = jax.lax.pad(a.reshape(b, p, x * l, r), jnp.zeros((), a.dtype),
                     [(0, 0, 0), (0, 0, 0), (0, 1, 0), (0, 0, 0)])
  flat = jax.lax.slice_in_dim(rows.reshape(b, p * (x * l + 1), r), 0, p * x * l, axis=1)
  return jax.lax.slice_in_dim(flat.reshape(b, p, x, l, r), p - 1, 2 * p - 1, axis=3)


def psa_mask(x: jax.Array, psa_type: str, mask_size: Sequence[int]) -> jax.Array:
  """mmcv's ``PSAMask`` forward on NHWC ``x`` of shape (N, H, W, mask_h * mask_w).

  Returns (N, H, W, H * W): mmcv's (N, H * W, H, W) output in NHWC, i.e. the
  last axis is mmcv's channel. With half = (mask - 1) // 2 and
  ``m(p, q) = x[p, (q_h - p_h + half_h) * mask_w + (q_w - p_w + half_w)]``
  (zero where that offset leaves the mask window):

  - collect:    out[q, p] = m(q, p)  (pixel q gathers from p with q's weights)
  - distribute: out[q, p] = m(p, q)  (pixel p sends to q with p's weights)

  Data movement only, no gather (whose indices an ONNX export would hold as a
  (H * W)^2 x 4 constant): the offset splits into an h and a w part, each cut to
  the 2H (2W) offsets q - p can take (:func:`_window`), then skewed into q by
  reshapes (:func:`_skew`), h first, then w. Past the window (which symbolic sizes
  pad by 2H and 2W first), intermediates are at most 4x the output.
  """
  if psa_type not in ('collect', 'distribute'):
    raise ValueError(f'psa_type must be collect or distribute, got {psa_type!r}')
  n, h, w, c = x.shape
  mask_h, mask_w = mask_size
  if c != mask_h * mask_w:
    raise ValueError(f'PSAMask needs {mask_h}x{mask_w}={mask_h * mask_w} channels, got {c}')
  half_h, half_w = (mask_h - 1) // 2, (mask_w - 1) // 2
  m = x.reshape(n, h, w, mask_h, mask_w)
  m = _window(_window(m, 3, h, half_h), 4, w, half_w)  # (N, H, W, 2H, 2W)
  m = _skew(m)  # (N, H, W, H, 2W): [n, ph, pw, qh, qw - pw + W - 1]
  m = _skew(m.reshape(n * h, w, h, 2 * w, 1))  # (N * H, W, H, W, 1): [n ph, pw, qh, qw]
  m = m.reshape(n, h * w, h * w)
  if psa_type == 'distribute':
    m = m.transpose(0, 2, 1)
  return m.reshape(n, h, w, h * w)


class PSAHead(DecodeHead):
  """MMSeg's PSAHead. ``mask_size`` is the attention window, (97, 97) / (66, 66) in the zoo."""
  mask_size: Sequence[int] = (97, 97)
  psa_type: str = 'bi-direction'
  compact: bool = False
  shrink_factor: int = 2
  normalization_factor: float = 1.0
  psa_softmax: bool = True

  def _attend(self, x: jax.Array, reduce: str, attention: str, psa_type: str,
              size, align_corners: bool, train: bool) -> jax.Array:
    """reduce -> shrink -> attention logits -> PSAMask -> softmax -> aggregate.

    ``compact`` skips PSAMask; as in MMSeg, the map is transposed for the single
    'collect' type and for the distribute branch of 'bi-direction'.
    """
    out = ConvModule(self.channels, 1, name=reduce)(x, train)
    out = resize(out, size, align_corners=align_corners)
    n, h, w, c = out.shape
    mask_h, mask_w = self.mask_size

    def attention_fn(feats):
      feats = ConvModule(self.channels, 1, name='0')(feats, train)
      return conv2d(feats, mask_h * mask_w, 1, use_bias=False, torch_init=True, name='1')

    y = Group(name=attention)(attention_fn, out)
    if self.compact:  # the attention map is already (pixels x pixels)
      y = y.reshape(n, h * w, h * w)
      if self.psa_type == 'collect' or (self.psa_type, psa_type) == ('bi-direction',
                                                                    'distribute'):
        y = y.transpose(0, 2, 1)
    else:
      y = psa_mask(y, psa_type, self.mask_size).reshape(n, h * w, h * w)
    if self.psa_softmax:
      y = softmax(y, axis=-1)
    factor = self.normalization_factor
    if factor is None:
      factor = mask_h * mask_w
    out = einsum('nqp,npc->nqc', y, out.reshape(n, h * w, c))
    return out.reshape(n, h, w, c) * (1.0 / factor)

  @nn.compact
  def __call__(self, inputs, train: bool = False) -> jax.Array:
    if self.psa_type not in PSA_TYPES:
      raise ValueError(f'psa_type must be one of {PSA_TYPES}, got {self.psa_type!r}')
    x = self.transform_inputs(inputs)
    h, w = x.shape[1:3]
    align_corners = self.align_corners
    sf = self.shrink_factor
    if sf != 1:
      # MMSeg: odd height and width keep both borders (align_corners), else floor.
      if not (isinstance(h % sf, int) and isinstance(w % sf, int)):
        raise ValueError(f'PSAHead: whether the {h}x{w} feature map divides by {sf} decides '
                         'its resize: give symbolic sizes that fix it (e.g. inputs in multiples '
                         f'of {8 * sf} at output stride 8)')
      if h % sf and w % sf:
        h, w, align_corners = (h - 1) // sf + 1, (w - 1) // sf + 1, True
      else:
        h, w, align_corners = h // sf, w // sf, False
    args = ((h, w), align_corners, train)
    if self.psa_type == 'bi-direction':
      out = jnp.concatenate([self._attend(x, 'reduce', 'attention', 'collect', *args),
                             self._attend(x, 'reduce_p', 'attention_p', 'distribute', *args)],
                            axis=-1)
    else:
      out = self._attend(x, 'reduce', 'attention', self.psa_type, *args)
    # MMSeg's 1x1 projection has padding=1: its output is 2 pixels larger, then resized.
    out = ConvModule(x.shape[-1], 1, padding=1, name='proj')(out, train)
    out = resize(out, x.shape[1:3], align_corners=align_corners)
    out = ConvModule(self.channels, 3, padding=1, name='bottleneck')(
        jnp.concatenate([x, out], axis=-1), train)
    return self.cls_seg(out, train)
