"""DepthwiseSeparableASPPHead (DeepLabV3+): separable ASPP and a stage-1 low-level branch."""
import flax.linen as nn
import jax
import jax.numpy as jnp

from jseg.models.heads.aspp import ASPPHead
from jseg.models.layers import ConvModule, DepthwiseSeparableConvModule, Group, resize


class DepthwiseSeparableASPPHead(ASPPHead):
  c1_in_channels: int = 256
  c1_channels: int = 48
  separable = True

  @nn.compact
  def __call__(self, inputs, train: bool = False) -> jax.Array:
    out = self.aspp(self.transform_inputs(inputs), train)
    if self.c1_in_channels > 0:
      c1 = ConvModule(self.c1_channels, 1, name='c1_bottleneck')(inputs[0], train)
      out = resize(out, c1.shape[1:3], align_corners=self.align_corners)
      out = jnp.concatenate([out, c1], axis=-1)

    def sep_bottleneck(x):
      for i in range(2):
        x = DepthwiseSeparableConvModule(self.channels, 3, padding=1, name=str(i))(x, train)
      return x

    return self.cls_seg(Group(name='sep_bottleneck')(sep_bottleneck, out), train)
