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

  @nn.compact
  def __call__(self, inputs, train: bool = False) -> jax.Array:
    x = self.transform_inputs(inputs)
    k, d = self.kernel_size, self.dilation

    def convs(feats):
      for i in range(self.num_convs):
        feats = ConvModule(self.channels, k, padding=k // 2 * d, dilation=d,
                           name=str(i))(feats, train)
      return feats

    feats = Group(name='convs')(convs, x) if self.num_convs else x
    if self.concat_input:
      feats = ConvModule(self.channels, k, padding=k // 2, name='conv_cat')(
          jnp.concatenate([x, feats], axis=-1), train)
    return self.cls_seg(feats, train)
