"""GCHead (GCNet): an FCNHead with mmcv's ContextBlock between its two convs."""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jseg.models.heads.fcn import FCNHead
from jseg.models.layers import Group, conv2d, einsum, softmax, stats_dtype

# mmcv's kaiming_init(mode='fan_in') of the context mask.
_kaiming_fan_in = nn.initializers.variance_scaling(2.0, 'fan_in', 'normal')


class ContextBlock(nn.Module):
  """mmcv's ContextBlock (global context block) on NHWC features.

  Context: softmax attention pooling over all positions (``pooling_type='att'``,
  a 1x1 ``conv_mask``) or the global mean (``'avg'``). Fusion: the context goes
  through conv -> LayerNorm -> ReLU -> conv and is added (``channel_add``)
  and/or, after a sigmoid, multiplied (``channel_mul``) into every position.
  """
  ratio: float = 1 / 4
  pooling_type: str = 'att'
  fusion_types: Sequence[str] = ('channel_add',)

  def transform(self, context: jax.Array, name: str) -> jax.Array:
    c, planes = context.shape[-1], int(context.shape[-1] * self.ratio)

    def layers(y):
      y = conv2d(y, planes, 1, torch_init=True, name='0')
      # LayerNorm([planes, 1, 1]) of the (N, planes, 1, 1) context: over channels.
      # In float32 (stats_dtype), as the policy keeps every normalization.
      y = nn.LayerNorm(epsilon=1e-5, use_fast_variance=False, dtype=stats_dtype(y.dtype),
                       name='1')(y).astype(y.dtype)
      return conv2d(nn.relu(y), c, 1, kernel_init=nn.initializers.zeros, name='3')

    return Group(name=name)(layers, context)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.pooling_type not in ('att', 'avg'):
      raise ValueError(f'pooling_type must be att or avg, got {self.pooling_type!r}')
    if not self.fusion_types or set(self.fusion_types) - {'channel_add', 'channel_mul'}:
      raise ValueError(f'fusion_types must be channel_add and/or channel_mul, got {self.fusion_types!r}')
    n, h, w, c = x.shape
    if self.pooling_type == 'att':
      mask = conv2d(x, 1, 1, kernel_init=_kaiming_fan_in, name='conv_mask')
      mask = softmax(mask.reshape(n, h * w), axis=-1)
      context = einsum('np,npc->nc', mask, x.reshape(n, h * w, c))[:, None, None, :]
    else:
      context = jnp.mean(x, axis=(1, 2), keepdims=True)
    out = x
    if 'channel_mul' in self.fusion_types:
      out = out * jax.nn.sigmoid(self.transform(context, 'channel_mul_conv'))
    if 'channel_add' in self.fusion_types:
      out = out + self.transform(context, 'channel_add_conv')
    return out


class GCHead(FCNHead):
  ratio: float = 1 / 4
  pooling_type: str = 'att'
  fusion_types: Sequence[str] = ('channel_add',)
  num_convs: int = 2  # fixed by MMSeg: convs.0 -> gc_block -> convs.1

  def context(self, feats, train):
    if self.num_convs != 2:
      raise ValueError(f'GCHead has exactly 2 convs, got num_convs={self.num_convs}')
    return ContextBlock(self.ratio, self.pooling_type, tuple(self.fusion_types),
                        name='gc_block')(feats)
