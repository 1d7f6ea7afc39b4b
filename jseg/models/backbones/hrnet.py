"""HRNetV2 backbone (MMSeg's ``HRNet``): parallel multi-resolution branches with fusion.

Module names follow MMSeg's state_dict: ``conv1/bn1/conv2/bn2`` (stem), ``layer1``
(stage 1 bottlenecks), ``transition{1,2,3}.{i}`` and ``stage{2,3,4}.{m}`` HRModules
with ``branches.{b}.{block}`` and ``fuse_layers.{i}.{j}``.
"""
from typing import Any, List, Sequence

import flax.linen as nn
import jax

from jseg.models.backbones.resnet import ResLayer
from jseg.models.layers import BatchNorm, Group, conv2d, resize

BLOCKS = {'BASIC': ('basic', 1), 'BOTTLENECK': ('bottleneck', 4)}


class ConvBN(nn.Module):
  """``nn.Sequential(conv (no bias), BN[, ReLU])`` with children ``0`` and ``1``."""
  features: int
  kernel_size: int = 1
  stride: int = 1
  relu: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    x = conv2d(x, self.features, self.kernel_size, stride=self.stride,
               padding=self.kernel_size // 2, use_bias=False, name='0')
    x = BatchNorm(name='1')(x, train)
    return nn.relu(x) if self.relu else x


class HRModule(nn.Module):
  """One high-resolution module: a residual branch per resolution, then fusion.

  Branch ``j`` enters output ``i`` through ``fuse_layers.i.j``: a 1x1 conv-BN and
  a bilinear upsampling by ``2**(j - i)`` (MMSeg's ``Upsample``, then a resize to
  branch ``i``'s size, which differs for odd sizes) when ``j > i``; ``i - j``
  strided 3x3 conv-BN(-ReLU) steps when ``j < i``.
  """
  block: str
  num_blocks: Sequence[int]
  in_channels: Sequence[int]
  num_channels: Sequence[int]
  multiscale_output: bool = True
  remat: bool = False

  @nn.compact
  def __call__(self, xs: List[jax.Array], train: bool) -> List[jax.Array]:
    kind, expansion = BLOCKS[self.block]
    n = len(self.num_channels)

    def branches(xs):
      return [ResLayer(kind, self.num_channels[b], self.num_blocks[b],
                       downsample=self.in_channels[b] != self.num_channels[b] * expansion,
                       remat=self.remat, name=str(b))(xs[b], train) for b in range(n)]

    xs = Group(name='branches')(branches, xs)
    if n == 1:
      return xs
    channels = [c * expansion for c in self.num_channels]

    def fuse_layers(xs):
      outs = []
      for i in range(n if self.multiscale_output else 1):
        outs.append(Group(name=str(i))(lambda: fuse_one(xs, i)))
      return outs

    def fuse_one(xs, i):
      h, w = xs[i].shape[1:3]
      y = 0
      for j in range(n):
        if j == i:
          y = y + xs[j]
        elif j > i:
          z = ConvBN(channels[i], 1, name=str(j))(xs[j], train)
          f = 2**(j - i)
          z = resize(z, (z.shape[1] * f, z.shape[2] * f))  # Upsample(scale_factor=f)
          y = y + resize(z, (h, w))
        else:
          def downsamples(z, j=j):
            for k in range(i - j):
              last = k == i - j - 1
              z = ConvBN(channels[i] if last else channels[j], 3, stride=2,
                         relu=not last, name=str(k))(z, train)
            return z
          y = y + Group(name=str(j))(downsamples, xs[j])
      return nn.relu(y)

    return Group(name='fuse_layers')(fuse_layers, xs)


class HRNet(nn.Module):
  """MMSeg's ``HRNet`` backbone; returns the four branches' features (strides 4 to 32).

  ``extra`` is MMSeg's dict of ``stage1`` ... ``stage4``, each with ``num_modules``,
  ``num_branches``, ``block`` ('BASIC' | 'BOTTLENECK'), ``num_blocks`` and
  ``num_channels``.
  """
  extra: Any
  multiscale_output: bool = True
  remat: bool = False  # recompute each residual block of the branches in the backward pass

  @property
  def output_stride(self) -> int:
    """The input's size over its smallest map's: 4, halved for each further branch."""
    return 4 * 2 ** (self.extra['stage4']['num_branches'] - 1)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> List[jax.Array]:
    stages = [self.extra[f'stage{i}'] for i in range(1, 5)]
    x = conv2d(x, 64, 3, stride=2, padding=1, use_bias=False, name='conv1')
    x = nn.relu(BatchNorm(name='bn1')(x, train))
    x = conv2d(x, 64, 3, stride=2, padding=1, use_bias=False, name='conv2')
    x = nn.relu(BatchNorm(name='bn2')(x, train))

    s1 = stages[0]
    kind, expansion = BLOCKS[s1['block']]
    planes = s1['num_channels'][0]
    x = ResLayer(kind, planes, s1['num_blocks'][0], downsample=64 != planes * expansion,
                 remat=self.remat, name='layer1')(x, train)
    xs, pre_channels = [x], [planes * expansion]

    for s, cfg in enumerate(stages[1:], start=2):
      expansion = BLOCKS[cfg['block']][1]
      channels = [c * expansion for c in cfg['num_channels']]
      xs = Group(name=f'transition{s - 1}')(self._transition, xs, pre_channels, channels, train)

      def modules(xs, cfg=cfg, last_stage=s == 4):
        in_channels = list(channels)
        for m in range(cfg['num_modules']):
          multiscale = self.multiscale_output or not last_stage or m < cfg['num_modules'] - 1
          xs = HRModule(cfg['block'], tuple(cfg['num_blocks']), tuple(in_channels),
                        tuple(cfg['num_channels']), multiscale_output=multiscale,
                        remat=self.remat, name=str(m))(xs, train)
          in_channels = [c * BLOCKS[cfg['block']][1] for c in cfg['num_channels']]
        return xs

      xs = Group(name=f'stage{s}')(modules, xs)
      pre_channels = channels
    return xs

  @staticmethod
  def _transition(xs, pre_channels, channels, train):
    """MMSeg's transition layer: adapt the widths, open new branches from the last one."""
    out = []
    for i, c in enumerate(channels):
      if i < len(pre_channels):
        out.append(xs[i] if c == pre_channels[i] else
                   ConvBN(c, 3, relu=True, name=str(i))(xs[i], train))
      else:
        def downsamples(z, i=i):
          for k in range(i + 1 - len(pre_channels)):
            last = k == i - len(pre_channels)
            z = ConvBN(c if last else pre_channels[-1], 3, stride=2, relu=True,
                       name=str(k))(z, train)
          return z
        out.append(Group(name=str(i))(downsamples, xs[-1]))
    return out
