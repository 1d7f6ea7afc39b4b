"""EncoderDecoder: backbone -> decode head (+ auxiliary head in training)."""
from typing import Optional

import flax.linen as nn
import jax

from jseg.models.layers import resize


class EncoderDecoder(nn.Module):
  """MMSeg's EncoderDecoder on NHWC images normalized as MMSeg's data preprocessor does.

  Eval (``train=False``): logits (N, H, W, num_classes) at the input size, MMSeg's
  ``encode_decode``. Train: ``{'decode': logits, 'aux': logits}`` at feature
  resolution, the input of :func:`jseg.models.losses.segmentor_loss`. A head with
  several training outputs (DANet) gives ``{name: logits}`` for ``'decode'`` in training
  and its one prediction logits in eval.
  """
  backbone: nn.Module
  decode_head: nn.Module
  auxiliary_head: Optional[nn.Module] = None

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False):
    feats = self.backbone(images, train)
    logits = self.decode_head(feats, train)
    outputs = {'decode': logits}
    # The auxiliary head only trains; it is also run at init so that its weights exist.
    if self.auxiliary_head is not None and (train or self.is_initializing()):
      outputs['aux'] = self.auxiliary_head(feats, train)
    if train:
      return outputs
    return resize(logits, images.shape[1:3], align_corners=self.decode_head.align_corners)
