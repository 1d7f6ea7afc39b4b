"""NLHead (NonLocal): an FCNHead with mmcv's NonLocal2d between its two convs."""
import flax.linen as nn
import jax

from jseg.models.heads.fcn import FCNHead
from jseg.models.layers import (BatchNorm, Group, attend, conv2d, einsum, kaiming_fan_out,
                                softmax)

MODES = ('embedded_gaussian', 'gaussian', 'dot_product', 'concatenation')


class _Kernel(nn.Module):
  """A bare conv kernel parameter (HWIO), for convolutions applied in factored form."""
  shape: tuple

  @nn.compact
  def __call__(self) -> jax.Array:
    return self.param('kernel', kaiming_fan_out, self.shape)


class NonLocal2d(nn.Module):
  """mmcv's NonLocal2d (no sub-sampling) on NHWC features, BN on ``conv_out``.

  ``g``, ``theta``, ``phi``: 1x1 convs to ``channels // reduction``; the pairwise
  weights of every position pair weight the sum of ``g``; ``conv_out`` (1x1 conv
  + BN, zero-initialised scale) maps back and is added to the input.
  """
  reduction: int = 2
  use_scale: bool = True
  mode: str = 'embedded_gaussian'

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if self.mode not in MODES:
      raise ValueError(f'mode must be one of {MODES}, got {self.mode!r}')
    n, h, w, c = x.shape
    inter = max(c // self.reduction, 1)

    def proj(name):  # ConvModule without norm and activation: a biased 1x1 conv
      return Group(name=name)(
          lambda t: conv2d(t, inter, 1, kernel_init=nn.initializers.normal(0.01), name='conv'),
          x).reshape(n, h * w, inter)

    g = proj('g')
    if self.mode == 'gaussian':
      theta = phi = x.reshape(n, h * w, c)
    else:
      theta, phi = proj('theta'), proj('phi')

    if self.mode == 'concatenation':
      # concat_project: ReLU(1x1 conv without bias) of [theta_i; phi_j] for every pair,
      # i.e. ReLU(theta_i . w_theta + phi_j . w_phi) -- computed without the pair tensor.
      kernel = Group(name='concat_project')(
          lambda: _Kernel((1, 1, 2 * inter, 1), name='conv')())[0, 0, :, 0]
      a = einsum('nqc,c->nq', theta, kernel[:inter])
      b = einsum('nkc,c->nk', phi, kernel[inter:])
      pair = nn.relu(a[:, :, None] + b[:, None, :])
    else:
      pair = einsum('nqc,nkc->nqk', theta, phi)
    if self.mode == 'embedded_gaussian' and self.use_scale:
      pair = pair / theta.shape[-1] ** 0.5
    if self.mode in ('embedded_gaussian', 'gaussian'):
      pair = softmax(pair, axis=-1)
    else:
      pair = pair / pair.shape[-1]
    y = attend('nqk,nkc->nqc', pair, g).reshape(n, h, w, inter)

    def conv_out(t):
      t = conv2d(t, c, 1, use_bias=False, name='conv')
      return BatchNorm(scale_init=nn.initializers.zeros, name='bn')(t, train)

    return x + Group(name='conv_out')(conv_out, y).astype(x.dtype)


class NLHead(FCNHead):
  reduction: int = 2
  use_scale: bool = True
  mode: str = 'embedded_gaussian'
  num_convs: int = 2  # fixed by MMSeg: convs.0 -> nl_block -> convs.1

  def context(self, feats, train):
    if self.num_convs != 2:
      raise ValueError(f'NLHead has exactly 2 convs, got num_convs={self.num_convs}')
    return NonLocal2d(self.reduction, self.use_scale, self.mode, name='nl_block')(feats, train)
