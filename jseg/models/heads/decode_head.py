"""Fields and the classifier shared by every decode head (MMSeg's BaseDecodeHead)."""
from typing import Sequence, Union

import flax.linen as nn
import jax

from jseg.models.layers import conv2d, dropout2d, resize, stats_dtype


class DecodeHead(nn.Module):
  """Base of the heads: ``__call__(inputs, train)`` maps backbone features to logits.

  ``inputs`` is the list of backbone outputs; ``in_index`` selects one (or, with
  ``input_transform``, several) of them.
  """
  num_classes: int = 19
  channels: int = 512
  in_index: Union[int, Sequence[int]] = -1
  input_transform: str = ''  # '' | 'resize_concat' | 'multiple_select'
  dropout_ratio: float = 0.1
  align_corners: bool = False
  init_conv_seg: bool = True

  def transform_inputs(self, inputs):
    if self.input_transform == 'resize_concat':
      feats = [inputs[i] for i in self.in_index]
      size = feats[0].shape[1:3]
      return jax.numpy.concatenate(
          [resize(f, size, align_corners=self.align_corners) for f in feats], axis=-1)
    if self.input_transform == 'multiple_select':
      return [inputs[i] for i in self.in_index]
    return inputs[self.in_index]

  def cls_seg(self, x: jax.Array, train: bool) -> jax.Array:
    """Channel dropout, then the 1x1 classifier ``conv_seg``: normal(0.01) init (MMSeg's
    ``init_cfg``), or torch's default where MMSeg never applies it (``init_conv_seg``).
    Logits are float32 (float64 stays) whatever the precision policy."""
    x = dropout2d(x, self.dropout_ratio, train)
    return conv2d(x, self.num_classes, 1, kernel_init=nn.initializers.normal(0.01),
                  torch_init=not self.init_conv_seg, out_dtype=stats_dtype(x.dtype),
                  name='conv_seg')
