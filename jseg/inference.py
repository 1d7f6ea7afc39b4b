"""Jitted whole and sliding-window inference, as MMSeg's ``EncoderDecoder.inference``.

All windows of an image go through the network as one batch; each image size
compiles once (``jax.jit`` caches by shape).
"""
import functools
from typing import Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from jseg.models.layers import resize


def slide_windows(h: int, w: int, crop: Sequence[int], stride: Sequence[int]):
  """MMSeg's window boxes (y1, y2, x1, x2): a grid whose last row/column snaps to the border."""
  (hc, wc), (hs, ws) = crop, stride
  h_grids = max(h - hc + hs - 1, 0) // hs + 1
  w_grids = max(w - wc + ws - 1, 0) // ws + 1
  boxes = []
  for i in range(h_grids):
    for j in range(w_grids):
      y2, x2 = min(i * hs + hc, h), min(j * ws + wc, w)
      boxes.append((max(y2 - hc, 0), y2, max(x2 - wc, 0), x2))
  return boxes


def slide_logits(apply_fn, variables, images: jax.Array, crop: Sequence[int],
                 stride: Sequence[int]) -> jax.Array:
  """Sum of window logits over the count of windows per pixel; (N, H, W, C).

  ``apply_fn(variables, x)`` returns logits at the size of ``x``. Windows are
  cut with static slices, run as one batch of N * windows, and pasted back.
  """
  n, h, w, _ = images.shape
  boxes = slide_windows(h, w, crop, stride)
  windows = jnp.concatenate([images[:, y1:y2, x1:x2] for y1, y2, x1, x2 in boxes], axis=0)
  window_logits = apply_fn(variables, windows)
  c = window_logits.shape[-1]
  preds = jnp.zeros((n, h, w, c), window_logits.dtype)
  count = np.zeros((1, h, w, 1), np.float32)
  for k, (y1, y2, x1, x2) in enumerate(boxes):
    preds = preds.at[:, y1:y2, x1:x2].add(window_logits[k * n:(k + 1) * n])
    count[:, y1:y2, x1:x2] += 1
  return preds / jnp.asarray(count, preds.dtype)


def make_predict_fn(model, test_cfg, align_corners: bool):
  """``predict(variables, images, out_size)`` -> logits (N, *out_size, C), jitted.

  ``images`` are the network inputs (test-resized and normalized); the logits of
  ``test_cfg.mode`` ('whole' | 'slide') are resized to ``out_size`` (the
  original image size), as MMSeg's ``postprocess_result`` does.
  """
  apply_fn = lambda v, x: model.apply(v, x)

  @functools.partial(jax.jit, static_argnums=2)
  def predict(variables, images, out_size: Tuple[int, int]):
    if test_cfg.mode == 'slide':
      logits = slide_logits(apply_fn, variables, images, tuple(test_cfg.crop_size),
                            tuple(test_cfg.stride))
    elif test_cfg.mode == 'whole':
      logits = apply_fn(variables, images)
    else:
      raise ValueError(f"test.mode={test_cfg.mode!r}; valid: 'whole', 'slide'")
    return resize(logits, out_size, align_corners=align_corners)

  return predict


def output_align_corners(config) -> bool:
  """``align_corners`` of the (last) decode head, which MMSeg resizes its outputs with."""
  head = config.model.decode_head
  if isinstance(head, (list, tuple)):  # cascade (OCRNet)
    head = head[-1]
  return bool(head['align_corners'])
