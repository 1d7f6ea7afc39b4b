"""CCHead (CCNet): FCNHead whose two convs enclose recurrent criss-cross attention."""
import flax.linen as nn
import jax
import jax.numpy as jnp

from jseg.models.heads.fcn import FCNHead
from jseg.models.layers import Scale, conv2d, einsum, softmax


class CrissCrossAttention(nn.Module):
  """mmcv's pure-PyTorch CrissCrossAttention on NHWC ``x``.

  Each pixel attends to its column and its row (H + W positions, the pixel itself
  counted once: the column term's diagonal is -inf); the output is
  ``gamma * attended + x`` with ``gamma`` initialised to 0.
  """

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    h = x.shape[1]
    q = conv2d(x, c // 8, 1, torch_init=True, name='query_conv')
    k = conv2d(x, c // 8, 1, torch_init=True, name='key_conv')
    v = conv2d(x, c, 1, torch_init=True, name='value_conv')
    energy_h = einsum('bhwc,biwc->bhwi', q, k)
    diag = jnp.eye(h, dtype=bool)[None, :, None, :]  # (1, H, 1, H): i == h
    energy_h = jnp.where(diag, -jnp.inf, energy_h)
    energy_w = einsum('bhwc,bhjc->bhwj', q, k)
    attn = softmax(jnp.concatenate([energy_h, energy_w], axis=-1), axis=-1)
    out = einsum('biwc,bhwi->bhwc', v, attn[..., :h])
    out = out + einsum('bhjc,bhwj->bhwc', v, attn[..., h:])
    return Scale(0.0, name='gamma')(out) + x


class CCHead(FCNHead):
  """MMSeg's CCHead: convs.0 -> ``recurrence`` x the same CrissCrossAttention -> convs.1.

  Always two 3x3 convs (MMSeg passes ``num_convs=2``); ``concat_input`` as FCNHead.
  """
  recurrence: int = 2

  def context(self, feats, train):
    if self.num_convs != 2:
      raise ValueError(f'CCHead has num_convs=2, got {self.num_convs}')
    cca = CrissCrossAttention(name='cca')  # one module applied ``recurrence`` times
    for _ in range(self.recurrence):
      feats = cca(feats)
    return feats
