"""Losses of MMSeg's decode heads: pixel-wise cross entropy with ignore_index."""
from typing import Mapping, Optional, Sequence

import jax
import jax.numpy as jnp

from jseg.models.layers import resize, stats_dtype

IGNORE_INDEX = 255
EPS = float(jnp.finfo(jnp.float32).eps)


def pixel_nll(logits: jax.Array, labels: jax.Array,
              ignore_index: int = IGNORE_INDEX) -> jax.Array:
  """Per-pixel negative log-likelihood (0 where ignored) in ``stats_dtype(logits.dtype)``."""
  valid = labels != ignore_index
  safe = jnp.where(valid, labels, 0).astype(jnp.int32)
  logp = jax.nn.log_softmax(logits.astype(stats_dtype(logits.dtype)), axis=-1)
  return jnp.where(valid, -jnp.take_along_axis(logp, safe[..., None], axis=-1)[..., 0], 0.0)


def ohem_weight(logits: jax.Array, labels: jax.Array, sampler_cfg,
                class_weight: Optional[Sequence[float]] = None,
                ignore_index: int = IGNORE_INDEX) -> jax.Array:
  """MMSeg's ``OHEMPixelSampler``: 1 for the hard pixels kept, 0 elsewhere.

  Without ``thresh`` it keeps the ``min_kept`` x batch valid pixels of highest
  loss; with it, those whose true-class probability is below
  ``max(thresh, the min_kept-th smallest probability)``.
  """
  logits = jax.lax.stop_gradient(logits)
  valid = labels != ignore_index
  batch_kept = sampler_cfg.min_kept * labels.shape[0]
  if sampler_cfg.get('thresh') is None:
    nll = pixel_nll(logits, labels, ignore_index)
    if class_weight is not None:
      nll = nll * jnp.asarray(class_weight, nll.dtype)[jnp.where(valid, labels, 0)]
    ranked = jnp.sort(jnp.where(valid, nll, -jnp.inf).ravel())[::-1]
    kth = ranked[min(batch_kept, ranked.size) - 1]
    return (valid & (nll >= kth)).astype(jnp.float32)
  prob = jnp.exp(-pixel_nll(logits, labels, ignore_index))
  ranked = jnp.sort(jnp.where(valid, prob, jnp.inf).ravel())
  n_valid = jnp.sum(valid)
  min_threshold = jnp.where(n_valid > 0, ranked[jnp.clip(jnp.minimum(batch_kept, n_valid - 1), 0)], 0.0)
  threshold = jnp.maximum(min_threshold, sampler_cfg.thresh)
  return (valid & (prob < threshold)).astype(jnp.float32)


def cross_entropy(logits: jax.Array, labels: jax.Array,
                  class_weight: Optional[Sequence[float]] = None,
                  avg_non_ignore: bool = False,
                  pixel_weight: Optional[jax.Array] = None,
                  ignore_index: int = IGNORE_INDEX) -> jax.Array:
  """MMSeg's ``CrossEntropyLoss`` (softmax) of NHWC ``logits`` and (N, H, W) ``labels``.

  Ignored pixels contribute zero. The mean divides by every pixel (MMSeg's
  default), by the non-ignored ones with ``avg_non_ignore``, and by the summed
  class weights of the labelled pixels when ``class_weight`` is given (as
  MMSeg 1.x does). ``pixel_weight`` (e.g. OHEM's) multiplies each pixel's loss
  but not the denominator. Never NaN, also when every pixel is ignored.
  """
  valid = labels != ignore_index
  nll = pixel_nll(logits, labels, ignore_index)
  if class_weight is not None:
    w = jnp.asarray(class_weight, nll.dtype)[jnp.where(valid, labels, 0)] * valid
    nll, denom = nll * w, jnp.sum(w)
  else:
    denom = jnp.sum(valid) if avg_non_ignore else labels.size
  if pixel_weight is not None:
    nll = nll * pixel_weight
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
  sampler = head_cfg.get('sampler')
  ignore_index = head_cfg.get('ignore_index', IGNORE_INDEX)  # MMSeg's BaseDecodeHead default
  weight = ohem_weight(logits, labels, sampler, class_weight, ignore_index) if sampler else None
  ce = cross_entropy(logits, labels, class_weight=class_weight,
                     avg_non_ignore=loss_cfg.get('avg_non_ignore', False), pixel_weight=weight,
                     ignore_index=ignore_index)
  return {loss_cfg.get('loss_name', 'loss_ce'): loss_cfg.loss_weight * ce,
          'acc_seg': accuracy(logits, labels, ignore_index)}


def segmentor_loss(model_cfg, outputs: Mapping[str, jax.Array], labels: jax.Array) -> dict:
  """MMSeg's loss dict (``decode.loss_ce``, ``aux.loss_ce``, ``*.acc_seg``) of a segmentor.

  A cascade's heads (a list ``decode_head``) are ``decode_0``, ``decode_1``, ...

  ``outputs`` is what the segmentor returns with ``train=True``: head prefix ->
  logits, or -> ``{name: logits}`` for heads with several outputs (DANet), whose
  terms are named ``decode.<name>.loss_ce``. ``labels`` are (N, H, W) integer maps
  with each head's ``ignore_index`` (255) for ignored pixels.
  """
  head_cfgs = {'decode': model_cfg.decode_head, 'aux': model_cfg.get('auxiliary_head')}
  if isinstance(model_cfg.decode_head, (list, tuple)):  # cascade: decode_0, decode_1, ...
    head_cfgs.update({f'decode_{i}': h for i, h in enumerate(model_cfg.decode_head)})
  losses = {}
  for prefix, out in outputs.items():
    named = out.items() if isinstance(out, Mapping) else [('', out)]
    for name, logits in named:
      full = f'{prefix}.{name}' if name else prefix
      for key, value in head_loss(logits, labels, head_cfgs[prefix]).items():
        losses[f'{full}.{key}'] = value
  return losses


def total_loss(losses: Mapping[str, jax.Array]) -> jax.Array:
  """Sum of the terms whose name contains ``loss`` (MMSeg's ``parse_losses``)."""
  return sum(v for k, v in losses.items() if 'loss' in k)
