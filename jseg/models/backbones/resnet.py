"""MMSeg's ResNet (V1b: 7x7 stem) and ResNetV1c (deep stem): pytorch style, dilated D8 / D16
with multi-grid."""
import math
from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jseg.models import cpu_conv
from jseg.models.layers import BatchNorm, conv2d

ARCH_SETTINGS = {18: ('basic', (2, 2, 2, 2)), 34: ('basic', (3, 4, 6, 3)),
                 50: ('bottleneck', (3, 4, 6, 3)), 101: ('bottleneck', (3, 4, 23, 3)),
                 152: ('bottleneck', (3, 8, 36, 3))}


def _last_bn_init(zero: bool):
  return nn.initializers.zeros if zero else nn.initializers.ones


class BasicBlock(nn.Module):
  """``zero_init_residual``: the last BN's scale starts at 0 (MMSeg's ResNet init)."""
  planes: int
  stride: int = 1
  dilation: int = 1
  downsample: bool = False
  zero_init_residual: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    identity = x
    out = conv2d(x, self.planes, 3, stride=self.stride, padding=self.dilation,
                 dilation=self.dilation, use_bias=False, name='conv1')
    out = nn.relu(BatchNorm(name='bn1')(out, train))
    out = conv2d(out, self.planes, 3, padding=1, use_bias=False, name='conv2')
    out = BatchNorm(scale_init=_last_bn_init(self.zero_init_residual), name='bn2')(out, train)
    if self.downsample:
      identity = Downsample(self.planes, self.stride, name='downsample')(x, train)
    return cpu_conv.materialized(nn.relu(out + identity))


class Bottleneck(nn.Module):
  """``zero_init_residual``: the last BN's scale starts at 0 (MMSeg's ResNet init)."""
  planes: int
  stride: int = 1
  dilation: int = 1
  downsample: bool = False
  zero_init_residual: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    identity = x
    out = conv2d(x, self.planes, 1, use_bias=False, name='conv1')
    out = nn.relu(BatchNorm(name='bn1')(out, train))
    out = conv2d(out, self.planes, 3, stride=self.stride, padding=self.dilation,
                 dilation=self.dilation, use_bias=False, name='conv2')
    out = nn.relu(BatchNorm(name='bn2')(out, train))
    out = conv2d(out, self.planes * 4, 1, use_bias=False, name='conv3')
    out = BatchNorm(scale_init=_last_bn_init(self.zero_init_residual), name='bn3')(out, train)
    if self.downsample:
      identity = Downsample(self.planes * 4, self.stride, name='downsample')(x, train)
    return cpu_conv.materialized(nn.relu(out + identity))


class Downsample(nn.Module):
  """A block's ``downsample`` Sequential: 1x1 strided conv (``0``) and BN (``1``)."""
  features: int
  stride: int

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    x = conv2d(x, self.features, 1, stride=self.stride, use_bias=False, name='0')
    return BatchNorm(name='1')(x, train)


class ResLayer(nn.Module):
  """One stage of blocks (``layer{i}``), MMSeg's dilation / multi-grid rules."""
  block: str
  planes: int
  num_blocks: int
  stride: int = 1
  dilation: int = 1
  downsample: bool = False
  contract_dilation: bool = False
  multi_grid: Optional[Sequence[int]] = None
  zero_init_residual: bool = False
  remat: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    block_cls = BasicBlock if self.block == 'basic' else Bottleneck
    if self.remat:  # only each block's input is kept for the backward pass; ``train`` static
      block_cls = nn.remat(block_cls, static_argnums=(2,))
    for b in range(self.num_blocks):
      if self.multi_grid is not None:  # MMSeg uses the grid rates as the dilations
        d = self.multi_grid[b]
      elif b == 0 and self.dilation > 1 and self.contract_dilation:
        d = self.dilation // 2
      else:
        d = self.dilation
      x = block_cls(self.planes, stride=self.stride if b == 0 else 1, dilation=d,
                    downsample=b == 0 and self.downsample,
                    zero_init_residual=self.zero_init_residual, name=str(b))(x, train)
    return x


class ResNet(nn.Module):
  """MMSeg's ``ResNet``; returns the outputs of the stages in ``out_indices``.

  ``deep_stem=False`` (MMSeg's ``ResNet``, torchvision's V1b): one 7x7 stride-2 conv
  (``conv1``, ``bn1``); ``deep_stem=True`` (:class:`ResNetV1c`): three 3x3 convs (``stem``).
  """
  depth: int = 50
  strides: Sequence[int] = (1, 2, 1, 1)
  dilations: Sequence[int] = (1, 1, 2, 4)
  out_indices: Sequence[int] = (0, 1, 2, 3)
  contract_dilation: bool = True
  multi_grid: Optional[Sequence[int]] = None
  stem_channels: int = 64
  base_channels: int = 64
  deep_stem: bool = False
  zero_init_residual: bool = True  # MMSeg's default: each block's last BN scale starts at 0
  remat: bool = False  # recompute each residual block in the backward pass (train.remat)

  @property
  def output_stride(self) -> int:
    """The input's size over its smallest map's: the stem's 4 x the stages' strides."""
    return 4 * math.prod(self.strides)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False):
    kind, stage_blocks = ARCH_SETTINGS[self.depth]
    expansion = 1 if kind == 'basic' else 4
    if self.deep_stem:
      x = Stem(self.stem_channels, name='stem')(x, train)
    else:
      x = conv2d(x, self.stem_channels, 7, stride=2, padding=3, use_bias=False, name='conv1')
      x = nn.relu(BatchNorm(name='bn1')(x, train))
    # The -inf border explicit (flax pads max_pool with it): jax2onnx's MaxPool drops padding.
    x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-jnp.inf)
    x = nn.max_pool(x, window_shape=(3, 3), strides=(2, 2), padding='VALID')
    inplanes = self.stem_channels
    outs = []
    for i, num_blocks in enumerate(stage_blocks):
      planes = self.base_channels * 2**i
      stride, dilation = self.strides[i], self.dilations[i]
      x = ResLayer(kind, planes, num_blocks, stride=stride, dilation=dilation,
                   downsample=stride != 1 or inplanes != planes * expansion,
                   contract_dilation=self.contract_dilation,
                   multi_grid=self.multi_grid if i == len(stage_blocks) - 1 else None,
                   zero_init_residual=self.zero_init_residual, remat=self.remat,
                   name=f'layer{i + 1}')(x, train)
      inplanes = planes * expansion
      if i in self.out_indices:
        outs.append(x)
    return outs


class ResNetV1c(ResNet):
  """MMSeg's ``ResNetV1c``: :class:`ResNet` with the deep stem."""
  deep_stem: bool = True


class Stem(nn.Module):
  """Deep stem: three 3x3 conv-BN-ReLU (``stem.0/1``, ``stem.3/4``, ``stem.6/7``)."""
  channels: int

  @nn.compact
  def __call__(self, x, train):
    for i, (c, s) in enumerate(((self.channels // 2, 2), (self.channels // 2, 1),
                                (self.channels, 1))):
      x = conv2d(x, c, 3, stride=s, padding=1, use_bias=False, name=str(3 * i))
      x = nn.relu(BatchNorm(name=str(3 * i + 1))(x, train))
    return x
