"""PSPHead: Pyramid Pooling Module (adaptive average pools, 1x1 convs, upsampling)."""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jseg.models.heads.decode_head import DecodeHead
from jseg.models.layers import ConvModule, Group, adaptive_avg_pool, resize


class PPM(nn.Module):
  """MMSeg's PPM (``psp_modules``): one pooled 1x1 ConvModule per scale, resized back."""
  pool_scales: Sequence[int]
  channels: int
  align_corners: bool

  @nn.compact
  def __call__(self, x: jax.Array, train: bool):
    outs = []
    for i, scale in enumerate(self.pool_scales):
      pooled = adaptive_avg_pool(x, scale)
      y = Group(name=str(i))(lambda p: ConvModule(self.channels, 1, name='1')(p, train), pooled)
      outs.append(resize(y, x.shape[1:3], align_corners=self.align_corners))
    return outs


class PSPHead(DecodeHead):
  pool_scales: Sequence[int] = (1, 2, 3, 6)

  @nn.compact
  def __call__(self, inputs, train: bool = False) -> jax.Array:
    x = self.transform_inputs(inputs)
    outs = [x] + PPM(self.pool_scales, self.channels, self.align_corners,
                     name='psp_modules')(x, train)
    feats = ConvModule(self.channels, 3, padding=1, name='bottleneck')(
        jnp.concatenate(outs, axis=-1), train)
    return self.cls_seg(feats, train)
