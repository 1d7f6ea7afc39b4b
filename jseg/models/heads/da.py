"""DAHead (DANet): position attention (PAM) and channel attention (CAM) branches.

In training the head returns ``{'pam_cam', 'pam', 'cam'}`` logits, each trained
with the head's loss (MMSeg's ``decode.pam_cam.loss_ce`` ...); in eval only
``pam_cam``, as MMSeg's ``DAHead.predict``.
"""
import flax.linen as nn
import jax

from jseg.models.heads.decode_head import DecodeHead
from jseg.models.layers import (ConvModule, Scale, conv2d, dropout2d, einsum, softmax,
                                stats_dtype)


class PAM(nn.Module):
  """Position attention: MMSeg's SelfAttentionBlock on (x, x) without norm or output
  projection, plus ``gamma * out + x`` (``gamma``: mmcv Scale, 0 at init)."""
  channels: int  # key / query projection width (``pam_channels``)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    n, h, w, c = x.shape
    query = conv2d(x, self.channels, 1, torch_init=True, name='query_project')
    key = conv2d(x, self.channels, 1, torch_init=True, name='key_project')
    value = conv2d(x, c, 1, torch_init=True, name='value_project')
    query, key, value = (t.reshape(n, h * w, t.shape[-1]) for t in (query, key, value))
    sim = softmax(einsum('nqc,nkc->nqk', query, key), axis=-1)
    out = einsum('nqk,nkc->nqc', sim, value).reshape(n, h, w, c)
    return Scale(0.0, name='gamma')(out) + x


class CAM(nn.Module):
  """Channel attention: softmax over ``max(energy) - energy`` of the channel Gram matrix."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    n, h, w, c = x.shape
    flat = x.reshape(n, h * w, c)
    energy = einsum('npc,npd->ncd', flat, flat)
    attention = softmax(energy.max(-1, keepdims=True) - energy, axis=-1)
    out = einsum('ncd,npd->npc', attention, flat).reshape(n, h, w, c)
    return Scale(0.0, name='gamma')(out) + x


class DAHead(DecodeHead):
  pam_channels: int = 64

  def _branch_seg(self, feat: jax.Array, name: str, train: bool) -> jax.Array:
    """``pam_cls_seg`` / ``cam_cls_seg``: the shared dropout, then a plain 1x1 conv (float32
    logits, as ``cls_seg``'s)."""
    feat = dropout2d(feat, self.dropout_ratio, train)
    return conv2d(feat, self.num_classes, 1, torch_init=True, out_dtype=stats_dtype(feat.dtype),
                  name=name)

  @nn.compact
  def __call__(self, inputs, train: bool = False):
    x = self.transform_inputs(inputs)
    pam_feat = ConvModule(self.channels, 3, padding=1, name='pam_in_conv')(x, train)
    pam_feat = PAM(self.pam_channels, name='pam')(pam_feat)
    pam_feat = ConvModule(self.channels, 3, padding=1, name='pam_out_conv')(pam_feat, train)

    cam_feat = ConvModule(self.channels, 3, padding=1, name='cam_in_conv')(x, train)
    cam_feat = CAM(name='cam')(cam_feat)
    cam_feat = ConvModule(self.channels, 3, padding=1, name='cam_out_conv')(cam_feat, train)

    pam_cam = self.cls_seg(pam_feat + cam_feat, train)
    # The single-branch classifiers only train; they are also run at init so their weights exist.
    if not (train or self.is_initializing()):
      return pam_cam
    outputs = {'pam_cam': pam_cam,
               'pam': self._branch_seg(pam_feat, 'pam_conv_seg', train),
               'cam': self._branch_seg(cam_feat, 'cam_conv_seg', train)}
    return outputs if train else pam_cam
