"""UPerHead (UperNet): a PPM on the last stage plus an FPN over every stage."""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jseg.models.heads.decode_head import DecodeHead
from jseg.models.heads.psp import PPM
from jseg.models.layers import ConvModule, Group, resize


class UPerHead(DecodeHead):
  """MMSeg's UPerHead on the ``in_index`` stages (always ``multiple_select``).

  The last stage goes through the PPM and ``bottleneck``; the others through 1x1
  ``lateral_convs``. A top-down pass adds each upsampled level to the one below,
  ``fpn_convs`` (3x3) smooth every level but the top, and all levels, resized to
  the finest, are concatenated into ``fpn_bottleneck``.
  """
  in_index: Sequence[int] = (0, 1, 2, 3)
  input_transform: str = 'multiple_select'
  pool_scales: Sequence[int] = (1, 2, 3, 6)

  @nn.compact
  def __call__(self, inputs, train: bool = False) -> jax.Array:
    if self.input_transform != 'multiple_select':
      raise ValueError(f'UPerHead needs input_transform=multiple_select, got {self.input_transform!r}')
    inputs = self.transform_inputs(inputs)
    ch, ac = self.channels, self.align_corners

    top = inputs[-1]
    psp = PPM(self.pool_scales, ch, ac, name='psp_modules')(top, train)
    top = ConvModule(ch, 3, padding=1, name='bottleneck')(
        jnp.concatenate([top] + psp, axis=-1), train)
    laterals = Group(name='lateral_convs')(
        lambda xs: [ConvModule(ch, 1, name=str(i))(x, train) for i, x in enumerate(xs)],
        inputs[:-1]) + [top]

    for i in range(len(laterals) - 1, 0, -1):  # top-down
      laterals[i - 1] = laterals[i - 1] + resize(laterals[i], laterals[i - 1].shape[1:3],
                                                 align_corners=ac)
    outs = Group(name='fpn_convs')(
        lambda xs: [ConvModule(ch, 3, padding=1, name=str(i))(x, train) for i, x in enumerate(xs)],
        laterals[:-1]) + [laterals[-1]]
    size = outs[0].shape[1:3]
    outs = [outs[0]] + [resize(o, size, align_corners=ac) for o in outs[1:]]
    feats = ConvModule(ch, 3, padding=1, name='fpn_bottleneck')(
        jnp.concatenate(outs, axis=-1), train)
    return self.cls_seg(feats, train)
