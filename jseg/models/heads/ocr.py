"""OCRHead (OCRNet): object-contextual representations from the previous head's soft regions.

The second stage of a :class:`~jseg.models.segmentor.CascadeEncoderDecoder`: the
first head's logits (``prev_output``) weight the pixels into one feature per class
(``SpatialGatherModule``); every pixel then attends over those class features
(``ObjectAttentionBlock``).
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from jseg.models.heads.decode_head import DecodeHead
from jseg.models.layers import ConvModule, Group, attend, einsum, softmax


def spatial_gather(feats: jax.Array, probs: jax.Array, scale: float = 1.0) -> jax.Array:
  """MMSeg's ``SpatialGatherModule``: (N, K, 1, C) class centres of NHWC ``feats``.

  Each class's centre averages the pixels with softmax-over-space weights of
  ``scale * probs`` (the previous head's logits, K classes).
  """
  n, h, w, k = probs.shape
  weights = softmax(scale * probs.reshape(n, h * w, k), axis=1)
  context = einsum('npk,npc->nkc', weights, feats.reshape(n, h * w, -1))
  return context[:, :, None, :]


class ObjectAttentionBlock(nn.Module):
  """MMSeg's ``ObjectAttentionBlock``: pixels (queries) attend over class centres (keys).

  A SelfAttentionBlock with two-ConvModule key / query projections, one-ConvModule
  value / out projections, ``channels**-0.5`` scaling, then ``bottleneck`` on
  ``concat([context, query_feats])``.
  """
  channels: int

  @nn.compact
  def __call__(self, query_feats: jax.Array, key_feats: jax.Array, train: bool) -> jax.Array:
    n, h, w, c = query_feats.shape
    ch = self.channels

    def project(x):
      return ConvModule(ch, 1, name='1')(ConvModule(ch, 1, name='0')(x, train), train)

    query = Group(name='query_project')(project, query_feats).reshape(n, h * w, ch)
    key = Group(name='key_project')(project, key_feats).reshape(n, -1, ch)
    value = ConvModule(ch, 1, name='value_project')(key_feats, train).reshape(n, -1, ch)
    sim = einsum('npc,nkc->npk', query, key) * ch**-0.5
    sim = softmax(sim, axis=-1)
    context = attend('npk,nkc->npc', sim, value).reshape(n, h, w, ch)
    context = ConvModule(c, 1, name='out_project')(context, train).astype(query_feats.dtype)
    return ConvModule(c, 1, name='bottleneck')(
        jnp.concatenate([context, query_feats], axis=-1), train)


class OCRHead(DecodeHead):
  """MMSeg's ``OCRHead``; ``__call__(inputs, prev_output, train)``.

  ``scale`` must be 1: MMSeg's ``scale > 1`` path (max-pooled queries) does not run.
  """
  ocr_channels: int = 256
  scale: int = 1

  @nn.compact
  def __call__(self, inputs, prev_output: jax.Array, train: bool = False) -> jax.Array:
    if self.scale != 1:
      raise ValueError(f'OCRHead.scale={self.scale}: only 1 is supported (MMSeg fails for > 1)')
    x = self.transform_inputs(inputs)
    feats = ConvModule(self.channels, 3, padding=1, name='bottleneck')(x, train)
    context = spatial_gather(feats, prev_output, self.scale)
    object_context = ObjectAttentionBlock(self.ocr_channels, name='object_context_block')(
        feats, context, train)
    return self.cls_seg(object_context, train)
