"""Jitted whole and sliding-window inference, as MMSeg's ``EncoderDecoder.inference``,
and MMSeg 1.x's flip / multi-scale test-time augmentation (``SegTTAModel``).

All windows of an image go through the network as one batch; each image size
compiles once (``jax.jit`` caches by shape). With TTA, an image and its mirror
go through as one batch per scale.
"""
import functools
from typing import Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from jseg.data.transforms import Normalize, imresize, rescale_size
from jseg.mesh import spatial_constraint
from jseg.models.layers import resize

# MMSeg's ``img_ratios`` of the ``tta_pipeline`` in its data set configs.
MS_RATIOS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)


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


def make_predict_fn(model, test_cfg, align_corners: bool, mesh=None):
  """``predict(variables, images, out_size)`` -> logits (N, *out_size, C), jitted.

  ``images`` are the network inputs (test-resized and normalized); the logits of
  ``test_cfg.mode`` ('whole' | 'slide') are resized to ``out_size`` (the
  original image size), as MMSeg's ``postprocess_result`` does. On a ``mesh`` with a
  ``spatial`` axis the network's input rows are split over it (:mod:`jseg.mesh`).
  """
  network = network_logits(model, test_cfg, mesh)

  @functools.partial(jax.jit, static_argnums=2)
  def predict(variables, images, out_size: Tuple[int, int]):
    return resize(network(variables, images), out_size, align_corners=align_corners)

  return predict


def network_logits(model, test_cfg, mesh=None):
  """``f(variables, images)`` -> logits at the size of ``images`` (whole or slide; with a
  ``mesh``, the network's input, the image or the batch of windows, split over its rows)."""
  if mesh is None:
    apply_fn = lambda v, x: model.apply(v, x)
  else:
    output_stride = model.backbone.output_stride  # not `stride`: slide's, below, is another
    apply_fn = lambda v, x: model.apply(v, spatial_constraint(x, mesh, output_stride))
  if test_cfg.mode == 'slide':
    crop, stride = tuple(test_cfg.crop_size), tuple(test_cfg.stride)
    return lambda v, x: slide_logits(apply_fn, v, x, crop, stride)
  if test_cfg.mode == 'whole':
    return apply_fn
  raise ValueError(f"test.mode={test_cfg.mode!r}; valid: 'whole', 'slide'")


def make_tta_fn(model, test_cfg, align_corners: bool, flip: bool = True):
  """``probs(variables, images, out_size)`` -> mean softmax probabilities (N, *out_size, C).

  One scale of MMSeg's ``SegTTAModel``: ``images`` (network inputs at that scale) and,
  with ``flip``, their horizontal mirror go through the network as one batch; each
  view's logits are flipped back, resized to ``out_size`` (``postprocess_result``),
  turned into probabilities (softmax over classes) and averaged over the views.
  """
  network = network_logits(model, test_cfg)

  @functools.partial(jax.jit, static_argnums=2)
  def probs(variables, images, out_size: Tuple[int, int]):
    n = images.shape[0]
    x = jnp.concatenate([images, images[:, :, ::-1]], axis=0) if flip else images
    logits = network(variables, x)
    if flip:
      logits = jnp.concatenate([logits[:n], logits[n:, :, ::-1]], axis=0)
    p = jax.nn.softmax(resize(logits, out_size, align_corners=align_corners), axis=-1)
    return (p[:n] + p[n:]) / 2 if flip else p

  return probs


def tta_scale(h: int, w: int, ratio: float) -> Tuple[int, int]:
  """(h, w) of mmcv's ``Resize(scale_factor=ratio, keep_ratio=True)`` of an h x w image.

  mmcv first scales the size, ``int(x * ratio + 0.5)``, then rescales the image to fit
  that (w, h) bound keeping its aspect ratio (the second rounding can differ by a pixel).
  """
  bound, _ = rescale_size((w, h), float(ratio))
  (new_w, new_h), _ = rescale_size((w, h), bound)
  return new_h, new_w


def tta_probs(tta_fn, variables, images_bgr: np.ndarray, data_cfg,
              ratios: Sequence[float] = MS_RATIOS) -> jax.Array:
  """Mean softmax probabilities (N, H, W, C) of MMSeg's multi-scale (+flip) TTA.

  ``images_bgr``: uint8 BGR (N, H, W, 3) or (H, W, 3) of one size, as ``cv2.imread``
  gives (MMSeg's ``tta_pipeline``: ``Resize(scale_factor=r, keep_ratio=True)`` of the
  original image for each ``r``, bilinear with cv2, then ``RandomFlip`` prob 0 and 1).
  ``tta_fn`` is :func:`make_tta_fn`'s; the views are averaged as ``SegTTAModel.merge_preds``
  does, at the original size. Each scale compiles once per image size.
  """
  images_bgr = np.asarray(images_bgr)
  if images_bgr.ndim == 3:
    images_bgr = images_bgr[None]
  h, w = images_bgr.shape[1:3]
  normalize = Normalize(data_cfg['mean'], data_cfg['std'], to_rgb=True)
  total = 0
  for r in ratios:
    new_h, new_w = tta_scale(h, w, r)
    x = np.stack([normalize({'img': imresize(im, (new_w, new_h), 'bilinear')})['img']
                  for im in images_bgr])
    total = total + tta_fn(variables, jnp.asarray(x), (h, w))
  return total / len(ratios)


def output_align_corners(config) -> bool:
  """``align_corners`` of the (last) decode head, which MMSeg resizes its outputs with."""
  head = config.model.decode_head
  if isinstance(head, (list, tuple)):  # cascade (OCRNet)
    head = head[-1]
  return bool(head['align_corners'])
