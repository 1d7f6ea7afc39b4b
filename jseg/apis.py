"""Segment single images: load a segmentor, predict a label map, draw it.

    from jseg import apis
    seg = apis.init_segmentor('configs/pspnet.py:r50-d8_512x1024_80k_cityscapes',
                              'pspnet_r50-d8_512x1024_80k_cityscapes.pth')
    label_map = apis.inference_segmentor(seg, 'street.png')         # (H, W) int32
    label_map = apis.inference_segmentor(seg, 'street.png', tta=True)  # MMSeg's ms+flip
    apis.show_result('street.png', label_map, out_file='street_seg.png', config=seg.config)

Images are read as ``cv2.imread(path, IMREAD_COLOR)`` reads them (and so as MMSeg's
``LoadImageFromFile``): BGR uint8, grayscale and RGBA files made 3-channel. Arrays are
taken as BGR too (cv2's and MMSeg's convention).
"""
import os
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from jseg import config as jconfig
from jseg import inference, visualize
from jseg.data import transforms

Image = Union[str, os.PathLike, np.ndarray]


class Segmentor(NamedTuple):
  """A model with its variables and config; ``predict`` / ``tta`` are jitted
  (:func:`jseg.inference.make_predict_fn` / :func:`jseg.inference.make_tta_fn`)."""
  model: Any
  variables: Any
  config: Any
  predict: Callable
  tta: Callable

  @property
  def palette(self) -> np.ndarray:
    """RGB colours (num_classes, 3) of the config's data set."""
    return _palette(self.config)


def _load_config(config_or_spec):
  if isinstance(config_or_spec, (str, os.PathLike)):
    return jconfig.load(os.fspath(config_or_spec))
  return config_or_spec


def init_segmentor(config_or_spec, checkpoint: Optional[str] = None, seed: int = 0) -> Segmentor:
  """A :class:`Segmentor` of a config (or a config spec ``PATH[:VARIANT]``).

  ``checkpoint``: an MMSeg ``.pth`` file (converted), an orbax directory (jseg's
  ``save_variables`` / ``jseg.convert``'s output, or a training state) or a training
  workdir (its best checkpoint), or ``'zoo'``: MMSeg's published weights of the config
  (:mod:`jseg.zoo`); :func:`jseg.weights.load_variables`. Without one,
  the weights are random (``seed``). A checkpoint that does not fit the config raises
  ValueError naming the offending keys.
  """
  from jseg import models, weights
  config = jconfig.resolve_num_classes(_load_config(config_or_spec))
  model = models.build_segmentor(config)
  if checkpoint is None:
    variables = models.init_variables(model, jax.random.key(seed))
  else:
    variables = weights.load_variables(config, checkpoint)
  variables = {'params': variables['params'], 'batch_stats': variables['batch_stats']}
  align_corners = inference.output_align_corners(config)
  return Segmentor(model, variables, config,
                   inference.make_predict_fn(model, config.test, align_corners),
                   inference.make_tta_fn(model, config.test, align_corners))


def load_image(image: Image) -> np.ndarray:
  """BGR uint8 (H, W, 3) of a path or an array, as ``cv2.imread(IMREAD_COLOR)`` gives.

  Grayscale (H, W) / (H, W, 1) and BGRA (H, W, 4) arrays become 3-channel BGR; a file
  that is not an image raises ValueError naming it.
  """
  if isinstance(image, (str, os.PathLike)):
    path = os.fspath(image)
    if not os.path.isfile(path):
      raise FileNotFoundError(f'no image file {path}')
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
      raise ValueError(f'{path} is not an image that OpenCV can read')
    return img
  img = np.asarray(image)
  if img.dtype != np.uint8:
    raise ValueError(f'image arrays must be uint8 (BGR), got {img.dtype}')
  if img.ndim == 3 and img.shape[2] == 1:
    img = img[..., 0]
  if img.ndim == 2:
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
  if img.ndim == 3 and img.shape[2] == 4:
    return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
  if img.ndim == 3 and img.shape[2] == 3:
    return np.ascontiguousarray(img)
  raise ValueError(f'expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image, '
                   f'got shape {img.shape}')


def _test_pipeline(data_cfg):
  """MMSeg's test pipeline for images without labels (no ReduceZeroLabel)."""
  return transforms.Compose([t for t in transforms.test_transforms(data_cfg)
                             if not isinstance(t, transforms.ReduceZeroLabel)])


def inference_segmentor(segmentor: Segmentor, image: Image, tta: bool = False,
                        ratios: Sequence[float] = inference.MS_RATIOS) -> np.ndarray:
  """Label map (H, W) int32 of ``image`` (a path or a BGR array) at its original size.

  Without ``tta``: the config's test pipeline (keep-ratio resize into ``test_img_scale``,
  normalize) and ``config.test`` (whole / slide) inference, as MMSeg's
  ``inference_model``. With ``tta``: MMSeg's ``tta_pipeline`` (every ratio of
  ``ratios``, each with its horizontal flip), softmax probabilities averaged.
  """
  img = load_image(image)
  ori_shape = img.shape[:2]
  if tta:
    probs = inference.tta_probs(segmentor.tta, segmentor.variables, img,
                                segmentor.config.data, ratios)
    return np.asarray(jnp.argmax(probs[0], axis=-1), np.int32)
  x = _test_pipeline(segmentor.config.data)({'img': img})['img']
  logits = segmentor.predict(segmentor.variables, jnp.asarray(x[None]), tuple(ori_shape))
  return np.asarray(jnp.argmax(logits[0], axis=-1), np.int32)


def _palette(config) -> np.ndarray:
  from jseg.data import datasets
  try:
    return np.asarray(datasets.dataset_info(config.data.dataset).palette, np.uint8)
  except FileNotFoundError:  # a folder data set that is not prepared here
    return visualize.default_palette(config.data.num_classes)


def show_result(image: Image, label_map: np.ndarray, palette=None, opacity: float = 0.5,
                out_file: Optional[str] = None, config=None) -> np.ndarray:
  """RGB (H, W, 3) uint8 picture of ``image`` blended with the colours of ``label_map``.

  ``palette``: RGB colours (num_classes, 3); by default the data set palette of
  ``config`` (a config or a :class:`Segmentor`), else a fixed random one. With
  ``out_file``, the picture is also written there (PNG for a ``.png`` name).
  """
  img = load_image(image)
  label_map = np.asarray(label_map)
  if label_map.shape != img.shape[:2]:
    raise ValueError(f'label map {label_map.shape} and image {img.shape[:2]} differ in size')
  if palette is None:
    config = getattr(config, 'config', config)
    palette = _palette(config) if config is not None else visualize.default_palette(256)
  picture = visualize.overlay(img[..., ::-1], label_map, palette, opacity)
  if out_file:
    os.makedirs(os.path.dirname(os.path.abspath(out_file)), exist_ok=True)
    visualize.save_rgb(os.fspath(out_file), picture)
  return picture
