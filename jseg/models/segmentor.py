"""EncoderDecoder: backbone -> decode head (+ auxiliary head in training); the cascade (OCRNet)."""
from typing import Optional, Sequence

import flax.linen as nn
import jax

from jseg.models.layers import Group, resize, stats_dtype


def policy_input(images: jax.Array, dtype: Optional[str]) -> jax.Array:
  """The images in the precision policy's compute dtype (``None``: as given); every layer
  then computes in the dtype of its input."""
  return images if dtype is None else images.astype(dtype)


def policy_output(logits: jax.Array) -> jax.Array:
  """Eval logits in float32 (float64 stays) for softmax, argmax and slide sums."""
  return logits.astype(stats_dtype(logits.dtype))


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
  dtype: Optional[str] = None  # the precision policy (``config.precision``) but float32

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False):
    feats = self.backbone(policy_input(images, self.dtype), train)
    logits = self.decode_head(feats, train)
    outputs = {'decode': logits}
    # The auxiliary head only trains; it is also run at init so that its weights exist.
    if self.auxiliary_head is not None and (train or self.is_initializing()):
      outputs['aux'] = self.auxiliary_head(feats, train)
    if train:
      return outputs
    return policy_output(resize(logits, images.shape[1:3],
                                align_corners=self.decode_head.align_corners))


class CascadeEncoderDecoder(nn.Module):
  """MMSeg's CascadeEncoderDecoder (OCRNet): each decode head refines the previous one's logits.

  ``decode_head`` is a sequence of heads (MMSeg's ``decode_head.0``, ``.1``, ...); head
  ``i > 0`` is called as ``head(feats, prev_logits, train)``. Eval: the last head's
  logits at the input size. Train: ``{'decode_0': ..., 'decode_1': ..., ['aux': ...]}``
  at feature resolution. In training, as in MMSeg, every stage but the last runs twice:
  once for its own loss, once more to feed the next stage (so its BN statistics
  update twice and its two dropout masks differ).
  """
  backbone: nn.Module
  decode_head: Sequence[nn.Module]
  auxiliary_head: Optional[nn.Module] = None
  dtype: Optional[str] = None  # as EncoderDecoder's

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False):
    feats = self.backbone(policy_input(images, self.dtype), train)

    def decode(feats):
      # MMSeg holds a cascade's heads in a plain nn.ModuleList, so init_weights() never reaches
      # their init_cfg: their conv_seg keeps torch's default initialization.
      heads = [h.copy(name=str(i), init_conv_seg=False) for i, h in enumerate(self.decode_head)]
      if not train:
        logits = heads[0](feats, train)
        for head in heads[1:]:
          logits = head(feats, logits, train)
        return {f'decode_{len(heads) - 1}': logits}
      # MMSeg's _decode_head_forward_train: stage i's input is a new forward of stage i - 1.
      outputs, prev = {'decode_0': heads[0](feats, train)}, None
      for i in range(1, len(heads)):
        prev = heads[i - 1](feats, train) if i == 1 else heads[i - 1](feats, prev, train)
        outputs[f'decode_{i}'] = heads[i](feats, prev, train)
      return outputs

    outputs = Group(name='decode_head')(decode, feats)
    if self.auxiliary_head is not None and (train or self.is_initializing()):
      outputs['aux'] = self.auxiliary_head(feats, train)
    if train:
      return outputs
    logits = outputs[f'decode_{len(self.decode_head) - 1}']
    return policy_output(resize(logits, images.shape[1:3],
                                align_corners=self.decode_head[-1].align_corners))
