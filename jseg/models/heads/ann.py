"""ANNHead: asymmetric non-local blocks, AFNB (fusion of stages 3 and 4) and APNB (context).

Keys and values are pooled to a pyramid of ``key_pool_scales`` bins (PPMConcat),
so attention costs ``H * W x sum(s * s)`` (110 positions for (1, 3, 6, 8)).
"""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jseg.models.heads.decode_head import DecodeHead
from jseg.models.layers import (ConvModule, Group, adaptive_avg_pool, attend, conv2d, dropout2d,
                                einsum, softmax)


def ppm_concat(x: jax.Array, pool_scales: Sequence[int]) -> jax.Array:
  """MMSeg's PPMConcat: adaptive average pools at each scale, flattened and concatenated.

  (N, H, W, C) -> (N, sum(s * s), C), bins in row-major order as torch's ``view``.
  """
  n, _, _, c = x.shape
  return jnp.concatenate([adaptive_avg_pool(x, s).reshape(n, s * s, c) for s in pool_scales],
                         axis=1)


class SelfAttentionBlock(nn.Module):
  """ANN's SelfAttentionBlock: ConvModule key / query projections, PPMConcat-pooled keys
  and values, attention scaled by ``channels ** -0.5``, plain 1x1 value / out projections.

  With ``share_key_query`` (APNB) the query uses ``key_project``, as in MMSeg, whose
  state_dict also lists it as ``query_project``.
  """
  channels: int
  out_channels: int
  share_key_query: bool
  query_scale: int
  key_pool_scales: Sequence[int]

  @nn.compact
  def __call__(self, query_feats: jax.Array, key_feats: jax.Array, train: bool) -> jax.Array:
    if self.query_scale != 1:  # MMSeg's reshape of the context fails for a pooled query
      raise ValueError(f'ANN supports query_scales of 1 only, got {self.query_scale}')
    n, h, w, _ = query_feats.shape
    key_project = ConvModule(self.channels, 1, name='key_project')
    query_project = (key_project if self.share_key_query
                     else ConvModule(self.channels, 1, name='query_project'))
    query = query_project(query_feats, train).reshape(n, h * w, self.channels)
    key = ppm_concat(key_project(key_feats, train), self.key_pool_scales)
    value = ppm_concat(conv2d(key_feats, self.channels, 1, torch_init=True,
                              name='value_project'), self.key_pool_scales)
    sim = einsum('nqc,nkc->nqk', query, key) * self.channels**-0.5
    sim = softmax(sim, axis=-1)
    context = attend('nqk,nkc->nqc', sim, value)
    context = context.reshape(n, h, w, self.channels)
    # MMSeg zero-initialises the plain out projection (SelfAttentionBlock.init_weights).
    return conv2d(context, self.out_channels, 1, kernel_init=nn.initializers.zeros,
                  name='out_project').astype(query_feats.dtype)


class AFNB(nn.Module):
  """Asymmetric fusion non-local block: queries from high-level, keys from low-level features."""
  channels: int
  query_scales: Sequence[int]
  key_pool_scales: Sequence[int]

  @nn.compact
  def __call__(self, low_feats: jax.Array, high_feats: jax.Array, train: bool) -> jax.Array:
    out_channels = high_feats.shape[-1]

    def stages():
      return [SelfAttentionBlock(self.channels, out_channels, False, s, self.key_pool_scales,
                                 name=str(i))(high_feats, low_feats, train)
              for i, s in enumerate(self.query_scales)]

    context = sum(Group(name='stages')(stages))
    return ConvModule(out_channels, 1, act=False, name='bottleneck')(
        jnp.concatenate([context, high_feats], axis=-1), train)


class APNB(nn.Module):
  """Asymmetric pyramid non-local block: self-attention with shared key / query projection."""
  channels: int
  out_channels: int
  query_scales: Sequence[int]
  key_pool_scales: Sequence[int]

  @nn.compact
  def __call__(self, feats: jax.Array, train: bool) -> jax.Array:
    def stages():
      return [SelfAttentionBlock(self.channels, self.out_channels, True, s,
                                 self.key_pool_scales, name=str(i))(feats, feats, train)
              for i, s in enumerate(self.query_scales)]

    context = sum(Group(name='stages')(stages))
    return ConvModule(self.out_channels, 1, name='bottleneck')(
        jnp.concatenate([context, feats], axis=-1), train)


class ANNHead(DecodeHead):
  """MMSeg's ANNHead on ``in_index`` (stage 3, stage 4) features (multiple_select)."""
  input_transform: str = 'multiple_select'
  project_channels: int = 256
  query_scales: Sequence[int] = (1,)
  key_pool_scales: Sequence[int] = (1, 3, 6, 8)

  @nn.compact
  def __call__(self, inputs, train: bool = False) -> jax.Array:
    if self.input_transform != 'multiple_select':
      raise ValueError(f'ANNHead needs input_transform multiple_select, got {self.input_transform!r}')
    low_feats, high_feats = self.transform_inputs(inputs)
    x = AFNB(self.project_channels, self.query_scales, self.key_pool_scales,
             name='fusion')(low_feats, high_feats, train)
    x = dropout2d(x, self.dropout_ratio, train)
    x = ConvModule(self.channels, 3, padding=1, name='bottleneck')(x, train)
    x = APNB(self.project_channels, self.channels, self.query_scales, self.key_pool_scales,
             name='context')(x, train)
    return self.cls_seg(x, train)
