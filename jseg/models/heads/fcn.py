"""FCNHead: stacked 3x3 ConvModules, optionally concatenated with the input."""
import flax.linen as nn
import jax
import jax.numpy as jnp

from jseg.models.heads.decode_head import DecodeHead
from jseg.models.layers import ConvModule, Group


class FCNHead(DecodeHead):
  num_convs: int = 2
  kernel_size: int = 3
  concat_input: bool = True
  dilation: int = 1

  def context(self, feats: jax.Array, train: bool) -> jax.Array:
    """The block between ``convs.0`` and ``convs.1`` (GCNet, NonLocal, CCNet); none in FCN."""
    return feats

  @nn.compact
  def __call__(self, inputs, train: bool = False) -> jax.Array:
    x = self.transform_inputs(inputs)
    k, d = self.kernel_size, self.dilation
    convs = Group(name='convs')
    feats = x
    for i in range(self.num_convs):
      feats = convs(lambda f, i=i: ConvModule(self.channels, k, padding=k // 2 * d, dilation=d,
                                              name=str(i))(f, train), feats)
      if i == 0:
        feats = self.context(feats, train)
    if self.concat_input:
      feats = ConvModule(self.channels, k, padding=k // 2, name='conv_cat')(
          jnp.concatenate([x, feats], axis=-1), train)
    return self.cls_seg(feats, train)
