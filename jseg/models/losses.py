"""Losses of MMSeg's decode heads: pixel-wise cross entropy with ignore_index."""
from typing import Mapping, Optional, Sequence

import jax
import jax.numpy as jnp

from jseg.models.layers import resize

IGNORE_INDEX = 255
EPS = float(jnp.finfo(jnp.float32).eps)


def cross_entropy(logits: jax.Array, labels: jax.Array,
                  class_weight: Optional[Sequence[float]] = None,
                  avg_non_ignore: bool = False,
                  ignore_index: int = IGNORE_INDEX) -> jax.Array:
  """MMSeg's ``CrossEntropyLoss`` (softmax) of NHWC ``logits`` and (N, H, W) ``labels``.

  Ignored pixels contribute zero. The mean divides by every pixel (MMSeg's
  default), by the non-ignored ones with ``avg_non_ignore``, and by the summed
  class weights of the labelled pixels when ``class_weight`` is given (as
  MMSeg 1.x does). Never NaN, also when every pixel is ignored.
  """
  logits = logits.astype(jnp.float32)
  valid = labels != ignore_index
  safe = jnp.where(valid, labels, 0).astype(jnp.int32)
  logp = jax.nn.log_softmax(logits, axis=-1)
  nll = -jnp.take_along_axis(logp, safe[..., None], axis=-1)[..., 0]
  if class_weight is not None:
    w = jnp.asarray(class_weight, jnp.float32)[safe] * valid
    return jnp.sum(nll * w) / (jnp.sum(w) + EPS)
  nll = jnp.where(valid, nll, 0.0)
  denom = jnp.sum(valid) if avg_non_ignore else labels.size
  return jnp.sum(nll) / (denom + EPS)


def accuracy(logits: jax.Array, labels: jax.Array,
             ignore_index: int = IGNORE_INDEX) -> jax.Array:
  """Top-1 pixel accuracy in percent over non-ignored pixels (MMSeg's ``acc_seg``)."""
  valid = labels != ignore_index
  correct = (jnp.argmax(logits, axis=-1) == labels) & valid
  return 100.0 * jnp.sum(correct) / jnp.maximum(jnp.sum(valid), 1)


def head_loss(logits: jax.Array, labels: jax.Array, head_cfg) -> dict:
  """``loss_ce`` (weighted) and ``acc_seg`` of one head's logits, upsampled to the labels."""
  logits = resize(logits, labels.shape[1:3], align_corners=head_cfg.align_corners)
  loss_cfg = head_cfg.loss_decode
  class_weight = loss_cfg.get('class_weight')
  ce = cross_entropy(logits, labels, class_weight=class_weight,
                     avg_non_ignore=loss_cfg.get('avg_non_ignore', False))
  return {loss_cfg.get('loss_name', 'loss_ce'): loss_cfg.loss_weight * ce,
          'acc_seg': accuracy(logits, labels)}


def segmentor_loss(model_cfg, outputs: Mapping[str, jax.Array], labels: jax.Array) -> dict:
  """MMSeg's loss dict (``decode.loss_ce``, ``aux.loss_ce``, ``*.acc_seg``) of a segmentor.

  ``outputs`` is what the segmentor returns with ``train=True``; ``labels`` are
  (N, H, W) integer maps with 255 for ignored pixels.
  """
  head_cfgs = {'decode': model_cfg.decode_head, 'aux': model_cfg.get('auxiliary_head')}
  losses = {}
  for prefix, logits in outputs.items():
    for key, value in head_loss(logits, labels, head_cfgs[prefix]).items():
      losses[f'{prefix}.{key}'] = value
  return losses


def total_loss(losses: Mapping[str, jax.Array]) -> jax.Array:
  """Sum of the terms whose name contains ``loss`` (MMSeg's ``parse_losses``)."""
  return sum(v for k, v in losses.items() if 'loss' in k)
