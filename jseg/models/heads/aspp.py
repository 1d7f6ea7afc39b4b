"""ASPPHead (DeepLabV3): image pooling plus parallel dilated convolutions."""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jseg.models.heads.decode_head import DecodeHead
from jseg.models.layers import ConvModule, DepthwiseSeparableConvModule, Group, adaptive_avg_pool, resize


class ASPPHead(DecodeHead):
  dilations: Sequence[int] = (1, 6, 12, 18)
  separable = False  # DepthwiseSeparableASPPHead uses separable convs for dilation > 1

  def aspp(self, x: jax.Array, train: bool) -> jax.Array:
    """``image_pool`` + ``aspp_modules``, concatenated, through ``bottleneck``."""
    pooled = Group(name='image_pool')(
        lambda p: ConvModule(self.channels, 1, name='1')(p, train), adaptive_avg_pool(x, 1))
    outs = [resize(pooled, x.shape[1:3], align_corners=self.align_corners)]

    def aspp_modules(x):
      for i, d in enumerate(self.dilations):
        if d == 1:
          outs.append(ConvModule(self.channels, 1, name=str(i))(x, train))
        elif self.separable:
          outs.append(DepthwiseSeparableConvModule(self.channels, 3, padding=d, dilation=d,
                                                   name=str(i))(x, train))
        else:
          outs.append(ConvModule(self.channels, 3, padding=d, dilation=d, name=str(i))(x, train))

    Group(name='aspp_modules')(aspp_modules, x)
    return ConvModule(self.channels, 3, padding=1, name='bottleneck')(
        jnp.concatenate(outs, axis=-1), train)

  @nn.compact
  def __call__(self, inputs, train: bool = False) -> jax.Array:
    return self.cls_seg(self.aspp(self.transform_inputs(inputs), train), train)
