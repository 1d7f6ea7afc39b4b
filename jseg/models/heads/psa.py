"""PSAHead (PSANet): point-wise spatial attention, collect and distribute branches.

MMSeg's ``psa_head.py`` with mmcv's ``PSAMask`` written as one gather: the
attention map predicts, for every feature pixel, a ``mask_size`` window of
weights centred on it; PSAMask places that window into a dense
(pixels x pixels) attention matrix.
"""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jseg.models.heads.decode_head import DecodeHead
from jseg.models.layers import (ConvModule, Group, arange, conv2d, einsum, is_static, resize,
                               softmax)

PSA_TYPES = ('collect', 'distribute', 'bi-direction')


def psa_mask(x: jax.Array, psa_type: str, mask_size: Sequence[int]) -> jax.Array:
  """mmcv's ``PSAMask`` forward on NHWC ``x`` of shape (N, H, W, mask_h * mask_w).

  Returns (N, H, W, H * W): mmcv's (N, H * W, H, W) output in NHWC, i.e. the
  last axis is mmcv's channel. With half = (mask - 1) // 2 and
  ``m(p, q) = x[p, (q_h - p_h + half_h) * mask_w + (q_w - p_w + half_w)]``
  (zero where that offset leaves the mask window):

  - collect:    out[q, p] = m(q, p)  (pixel q gathers from p with q's weights)
  - distribute: out[q, p] = m(p, q)  (pixel p sends to q with p's weights)
  """
  if psa_type not in ('collect', 'distribute'):
    raise ValueError(f'psa_type must be collect or distribute, got {psa_type!r}')
  n, h, w, c = x.shape
  mask_h, mask_w = mask_size
  if c != mask_h * mask_w:
    raise ValueError(f'PSAMask needs {mask_h}x{mask_w}={mask_h * mask_w} channels, got {c}')
  half_h, half_w = (mask_h - 1) // 2, (mask_w - 1) // 2
  # Index arithmetic on the host (in the program for symbolic sizes: jax.export); the
  # (H, W, H, W) gather broadcasts these small arrays.
  xp = np if is_static(h, w) else jnp
  ph = arange(xp, h, np.int32).reshape(h, 1, 1, 1)
  pw = arange(xp, w, np.int32).reshape(1, w, 1, 1)
  qh = arange(xp, h, np.int32).reshape(1, 1, h, 1)
  qw = arange(xp, w, np.int32).reshape(1, 1, 1, w)
  mh, mw = qh - ph + half_h, qw - pw + half_w
  valid_h = (mh >= 0) & (mh < mask_h)  # (H, 1, H, 1)
  valid_w = (mw >= 0) & (mw < mask_w)  # (1, W, 1, W)
  m = x.reshape(n, h, w, mask_h, mask_w)[:, ph, pw, xp.clip(mh, 0, mask_h - 1),
                                         xp.clip(mw, 0, mask_w - 1)]  # (N, H, W, H, W)
  zero = jnp.zeros((), x.dtype)
  # Two broadcast masks, not their (H, W, H, W) product: no pixels^2 constant in the program.
  m = jnp.where(jnp.asarray(valid_w), jnp.where(jnp.asarray(valid_h), m, zero), zero)
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
