"""MMSegmentation 1.x's training and test pipelines in numpy / OpenCV.

A record is a dict like MMSeg's ``results``: ``img`` is a BGR ``uint8`` HxWx3 array (as
``cv2.imread`` gives) and ``gt_seg_map`` a ``uint8`` HxW label map. Every random transform
is split into a *sampling* part, ``sample(results, rng) -> params``, which draws its
parameters from ``rng``, and a *deterministic* part, ``apply(results, params) -> results``,
which only applies them. ``transform(results, rng)`` does both.

``rng`` is an ``np.random.Generator`` (e.g. ``np.random.default_rng((seed, epoch, index))``
per record, so a run is reproducible and resumable) or a legacy ``np.random.RandomState``.
The draws are made in MMSeg's order with MMSeg's distributions, so a ``RandomState(s)``
replays exactly what MMSeg's pipeline does after ``np.random.seed(s)``.

The training pipeline of MMSeg's Cityscapes / ADE20K / VOC recipes::

    LoadAnnotations(reduce_zero_label)  ->  ReduceZeroLabel (ADE20K only)
    RandomResize(scale, ratio_range=(0.5, 2.0), keep_ratio=True)
    RandomCrop(crop_size, cat_max_ratio=0.75)
    RandomFlip(prob=0.5)
    PhotoMetricDistortion()
    SegDataPreProcessor(bgr_to_rgb, mean, std, size=crop_size, pad 0 / 255)
                                    ->  Normalize, then Pad (MMSeg pads after normalizing)

and the test pipeline: ``Resize(test_img_scale, keep_ratio=True)`` of the image only (the
label stays at its original size for evaluation), ``ReduceZeroLabel``, ``Normalize``.
"""
from typing import Any, Callable, Dict, Optional, Tuple, Union

import cv2
import numpy as np

Rng = Union[np.random.Generator, np.random.RandomState]
Results = Dict[str, Any]


# Random draws, the same for a Generator and a RandomState (MMSeg uses np.random's legacy
# global state: randint(low, high) is high-exclusive; random() and choice() are the same).
def _randint(rng: Rng, low: int, high: int) -> int:
  """An int in [low, high)."""
  if isinstance(rng, np.random.Generator):
    return int(rng.integers(low, high))
  return int(rng.randint(low, high))


def _uniform(rng: Rng, low: float, high: float) -> float:
  # A Python float: numpy 2 keeps float32 * python-float in float32, as MMSeg gets it.
  return float(rng.uniform(low, high))


# Geometry helpers: mmcv's rescale_size / imrescale / imresize with the cv2 backend.
def rescale_size(old_size: Tuple[int, int], scale: Union[float, Tuple[int, int]]
                 ) -> Tuple[Tuple[int, int], float]:
  """mmcv.rescale_size: ``old_size`` (w, h) -> (new (w, h), scale factor).

  A tuple ``scale`` is a (long edge, short edge) bound: the image becomes as large as
  possible within it, keeping its aspect ratio. Sizes round with ``int(x * s + 0.5)``.
  """
  w, h = old_size
  if isinstance(scale, (float, int)):
    if scale <= 0:
      raise ValueError(f'invalid scale {scale}, must be positive')
    factor = scale
  else:
    factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
  return (int(w * float(factor) + 0.5), int(h * float(factor) + 0.5)), factor


def imresize(img: np.ndarray, size: Tuple[int, int], interpolation: str = 'bilinear'
             ) -> np.ndarray:
  """mmcv.imresize with the cv2 backend; ``size`` is (w, h)."""
  code = {'bilinear': cv2.INTER_LINEAR, 'nearest': cv2.INTER_NEAREST}[interpolation]
  return cv2.resize(img, tuple(int(s) for s in size), interpolation=code)


def imrescale(img: np.ndarray, scale, interpolation: str = 'bilinear') -> np.ndarray:
  """mmcv.imrescale (keep ratio) with the cv2 backend."""
  h, w = img.shape[:2]
  new_size, _ = rescale_size((w, h), scale)
  return imresize(img, new_size, interpolation)


def reduce_zero_label(seg: np.ndarray) -> np.ndarray:
  """LoadAnnotations(reduce_zero_label=True): 0 -> 255, the others -1, 255 stays 255."""
  seg = np.array(seg, dtype=np.uint8, copy=True)
  seg[seg == 0] = 255
  seg = seg - 1
  seg[seg == 254] = 255
  return seg


def label_counts(seg: np.ndarray) -> np.ndarray:
  """How many pixels of a uint8 label map hold each value 0..255 (int64, 256).

  OpenCV's histogram: 5x faster than ``np.bincount``, which widens every pixel to int64 first.
  Its float32 counts are exact below 2**24 pixels; larger maps take ``np.bincount``."""
  if seg.size >= 1 << 24:
    return np.bincount(seg.ravel(), minlength=256)
  return cv2.calcHist([np.ascontiguousarray(seg)], [0], None, [256], [0, 256]).ravel().astype(
      np.int64)


class Transform:
  """A transform: ``sample`` draws its parameters (none for a deterministic one), a
  subclass's ``apply(results, params)`` applies them, ``transform`` / calling it does both."""

  def sample(self, results: Results, rng: Optional[Rng]) -> Any:
    return None

  def transform(self, results: Results, rng: Optional[Rng] = None) -> Results:
    return self.apply(results, self.sample(results, rng))

  __call__ = transform


class ReduceZeroLabel(Transform):
  """The ``reduce_zero_label`` of MMSeg's LoadAnnotations (ADE20K). Deterministic."""

  def apply(self, results: Results, params=None) -> Results:
    results['gt_seg_map'] = reduce_zero_label(results['gt_seg_map'])
    results['reduce_zero_label'] = True
    return results


class Resize(Transform):
  """mmcv's / MMSeg's ``Resize(scale, keep_ratio)``: image bilinear, label nearest.

  ``scale`` is (w, h) like MMSeg's; with ``keep_ratio`` it bounds the (long, short) edges.
  ``resize_seg=False`` leaves ``gt_seg_map`` alone (MMSeg's test pipeline loads the label
  after Resize, so it is evaluated at the original size).
  """

  def __init__(self, scale: Tuple[int, int], keep_ratio: bool = True, resize_seg: bool = True):
    self.scale = tuple(int(s) for s in scale)
    self.keep_ratio = keep_ratio
    self.resize_seg = resize_seg

  def apply(self, results: Results, scale: Optional[Tuple[int, int]] = None) -> Results:
    scale = self.scale if scale is None else tuple(int(s) for s in scale)
    img = results['img']
    h, w = img.shape[:2]
    resize = imrescale if self.keep_ratio else imresize
    img = resize(img, scale, 'bilinear')
    new_h, new_w = img.shape[:2]
    results['img'] = img
    results['img_shape'] = (new_h, new_w)
    results['scale'] = scale
    results['scale_factor'] = (new_w / w, new_h / h)
    results['keep_ratio'] = self.keep_ratio
    if self.resize_seg and results.get('gt_seg_map') is not None:
      results['gt_seg_map'] = resize(results['gt_seg_map'], scale, 'nearest')
    return results


class RandomResize(Resize):
  """mmcv's ``RandomResize(scale, ratio_range, keep_ratio=True)``.

  Samples ``ratio ~ U[min, max)`` and the target scale ``(int(w * ratio), int(h * ratio))``,
  then resizes as :class:`Resize`.
  """

  def __init__(self, scale: Tuple[int, int], ratio_range: Tuple[float, float] = (0.5, 2.0),
               keep_ratio: bool = True):
    super().__init__(scale, keep_ratio)
    self.ratio_range = tuple(ratio_range)

  def sample(self, results: Results, rng: Rng) -> Tuple[int, int]:
    lo, hi = self.ratio_range
    ratio = float(rng.random()) * (hi - lo) + lo
    return int(self.scale[0] * ratio), int(self.scale[1] * ratio)


class RandomCrop(Transform):
  """MMSeg's ``RandomCrop(crop_size, cat_max_ratio, ignore_index)``; crop_size is (h, w).

  A box is drawn with offsets ``U{0..max(H - h, 0)}``, ``U{0..max(W - w, 0)}``. With
  ``cat_max_ratio < 1`` it is re-drawn (up to 10 times; the last draw is kept) while the
  crop holds fewer than two labels (``ignore_index`` not counted) or one label covers at
  least ``cat_max_ratio`` of the counted pixels.
  """

  def __init__(self, crop_size: Tuple[int, int], cat_max_ratio: float = 1.0,
               ignore_index: int = 255):
    if isinstance(crop_size, int):
      crop_size = (crop_size, crop_size)
    self.crop_size = tuple(int(s) for s in crop_size)
    self.cat_max_ratio = cat_max_ratio
    self.ignore_index = ignore_index

  def _draw(self, shape, rng: Rng) -> Tuple[int, int, int, int]:
    margin_h = max(shape[0] - self.crop_size[0], 0)
    margin_w = max(shape[1] - self.crop_size[1], 0)
    offset_h = _randint(rng, 0, margin_h + 1)
    offset_w = _randint(rng, 0, margin_w + 1)
    return offset_h, offset_h + self.crop_size[0], offset_w, offset_w + self.crop_size[1]

  def accept(self, seg_crop: np.ndarray) -> bool:
    """MMSeg's cat_max_ratio test of one cropped label map."""
    if seg_crop.dtype == np.uint8:
      cnt = label_counts(seg_crop)
      if 0 <= self.ignore_index < 256:
        cnt[self.ignore_index] = 0
      cnt = cnt[cnt > 0]
    else:
      labels, cnt = np.unique(seg_crop, return_counts=True)
      cnt = cnt[labels != self.ignore_index]
    return len(cnt) > 1 and np.max(cnt) / np.sum(cnt) < self.cat_max_ratio

  def sample(self, results: Results, rng: Rng) -> Tuple[int, int, int, int]:
    """The crop box (y1, y2, x1, x2)."""
    shape = results['img'].shape[:2]
    box = self._draw(shape, rng)
    if self.cat_max_ratio < 1.0:
      for _ in range(10):
        if self.accept(crop(results['gt_seg_map'], box)):
          break
        box = self._draw(shape, rng)
    return box

  def apply(self, results: Results, box: Tuple[int, int, int, int]) -> Results:
    results['img'] = crop(results['img'], box)
    if results.get('gt_seg_map') is not None:
      results['gt_seg_map'] = crop(results['gt_seg_map'], box)
    results['img_shape'] = results['img'].shape[:2]
    return results


def crop(img: np.ndarray, box: Tuple[int, int, int, int]) -> np.ndarray:
  y1, y2, x1, x2 = box
  return img[y1:y2, x1:x2, ...]


class RandomFlip(Transform):
  """MMSeg's ``RandomFlip(prob, direction='horizontal')``; the sample is whether to flip."""

  def __init__(self, prob: float = 0.5, direction: str = 'horizontal'):
    if direction not in ('horizontal', 'vertical'):
      raise ValueError(f"RandomFlip direction={direction!r}: expected 'horizontal' or 'vertical'")
    self.prob = float(prob)
    self.direction = direction

  def sample(self, results: Results, rng: Rng) -> bool:
    # np.random.choice([direction, None], p=[prob, 1 - prob]) in mmcv: one uniform draw.
    return int(rng.choice(2, p=[self.prob, 1.0 - self.prob])) == 0

  def apply(self, results: Results, flip: bool) -> Results:
    results['flip'] = bool(flip)
    results['flip_direction'] = self.direction if flip else None
    if flip:
      axis = 1 if self.direction == 'horizontal' else 0
      results['img'] = np.flip(results['img'], axis=axis)
      if results.get('gt_seg_map') is not None:
        results['gt_seg_map'] = np.flip(results['gt_seg_map'], axis=axis).copy()
    return results


class PhotoMetricDistortion(Transform):
  """MMSeg's ``PhotoMetricDistortion`` on a BGR uint8 image.

  The sample is a dict: ``brightness`` (beta or None), ``mode`` (0: contrast last,
  1: contrast first), ``contrast`` (alpha or None), ``saturation`` (alpha or None), ``hue``
  (integer delta in [-hue_delta, hue_delta), like np.random.randint, or None). Each step
  happens with probability 0.5 and ends in a float32 -> clip [0, 255] -> uint8 cast.
  """

  def __init__(self, brightness_delta: int = 32, contrast_range=(0.5, 1.5),
               saturation_range=(0.5, 1.5), hue_delta: int = 18):
    self.brightness_delta = brightness_delta
    self.contrast_lower, self.contrast_upper = contrast_range
    self.saturation_lower, self.saturation_upper = saturation_range
    self.hue_delta = hue_delta

  def sample(self, results: Results, rng: Rng) -> Dict[str, Any]:
    """Draws in MMSeg's order: brightness, mode, [contrast], saturation, hue, [contrast]."""
    p = dict(brightness=None, mode=None, contrast=None, saturation=None, hue=None)
    if _randint(rng, 0, 2):
      p['brightness'] = _uniform(rng, -self.brightness_delta, self.brightness_delta)
    p['mode'] = _randint(rng, 0, 2)

    def contrast():
      if _randint(rng, 0, 2):
        p['contrast'] = _uniform(rng, self.contrast_lower, self.contrast_upper)

    if p['mode'] == 1:
      contrast()
    if _randint(rng, 0, 2):
      p['saturation'] = _uniform(rng, self.saturation_lower, self.saturation_upper)
    if _randint(rng, 0, 2):
      p['hue'] = _randint(rng, -self.hue_delta, self.hue_delta)
    if p['mode'] == 0:
      contrast()
    return p

  @staticmethod
  def convert(img: np.ndarray, alpha: float = 1, beta: float = 0) -> np.ndarray:
    """MMSeg's ``convert``: float32 ``img * alpha + beta``, clipped to [0, 255], cast to uint8.

    Each output value depends only on its input value, so it runs as a lookup table of the
    same formula on the 256 uint8 values (identical results, one pass instead of four)."""
    levels = np.arange(256, dtype=np.uint8).astype(np.float32) * alpha + beta
    return cv2.LUT(img, np.clip(levels, 0, 255).astype(np.uint8))

  def apply_img(self, img: np.ndarray, p: Dict[str, Any]) -> np.ndarray:
    if p.get('brightness') is not None:
      img = self.convert(img, beta=float(p['brightness']))
    if p['mode'] == 1 and p.get('contrast') is not None:
      img = self.convert(img, alpha=float(p['contrast']))
    if p.get('saturation') is not None:
      img = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
      img[:, :, 1] = self.convert(img[:, :, 1], alpha=float(p['saturation']))
      img = cv2.cvtColor(img, cv2.COLOR_HSV2BGR)
    if p.get('hue') is not None:
      img = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
      shift = (np.arange(256) + int(p['hue'])) % 180  # OpenCV's uint8 hue is 0..179
      img[:, :, 0] = cv2.LUT(img[:, :, 0], shift.astype(np.uint8))
      img = cv2.cvtColor(img, cv2.COLOR_HSV2BGR)
    if p['mode'] == 0 and p.get('contrast') is not None:
      img = self.convert(img, alpha=float(p['contrast']))
    return img

  def apply(self, results: Results, p: Dict[str, Any]) -> Results:
    results['img'] = self.apply_img(results['img'], p)
    return results


class Normalize(Transform):
  """SegDataPreProcessor's ``bgr_to_rgb`` + ``(x - mean) / std`` in float32 (RGB mean/std)."""

  def __init__(self, mean, std, to_rgb: bool = True):
    self.mean = np.asarray(mean, np.float32)
    self.std = np.asarray(std, np.float32)
    self.to_rgb = to_rgb

  def apply(self, results: Results, params=None) -> Results:
    img = results['img']
    if self.to_rgb:
      img = img[..., ::-1]
    results['img'] = (img.astype(np.float32) - self.mean) / self.std
    return results


class Pad(Transform):
  """SegDataPreProcessor's padding to ``size`` (h, w) at the bottom / right.

  MMSeg 1.x pads after normalizing, so the image's ``pad_val`` 0 is 0 in normalized
  space; the label is padded with ``seg_pad_val`` 255.
  """

  def __init__(self, size: Tuple[int, int], pad_val: float = 0, seg_pad_val: int = 255):
    self.size = tuple(int(s) for s in size)
    self.pad_val = pad_val
    self.seg_pad_val = seg_pad_val

  @staticmethod
  def pad(x: np.ndarray, size, value) -> np.ndarray:
    h, w = x.shape[:2]
    if h >= size[0] and w >= size[1]:
      return np.ascontiguousarray(x)
    out = np.full((max(h, size[0]), max(w, size[1])) + x.shape[2:], value, x.dtype)
    out[:h, :w] = x
    return out

  def apply(self, results: Results, params=None) -> Results:
    results['pad_shape'] = self.size
    results['img'] = self.pad(results['img'], self.size, self.pad_val)
    if results.get('gt_seg_map') is not None:
      results['gt_seg_map'] = self.pad(results['gt_seg_map'], self.size, self.seg_pad_val)
    return results


class RGBToBGR(Transform):
  """Flips the channels of a record stored as RGB into the BGR that the pipelines expect."""

  def apply(self, results: Results, params=None) -> Results:
    results['img'] = np.ascontiguousarray(results['img'][..., ::-1])
    return results


# Pipelines.
class Compose:
  """Applies transforms in order: ``pipeline(results, rng) -> results``."""

  def __init__(self, transforms):
    self.transforms = list(transforms)

  def __call__(self, results: Results, rng: Optional[Rng] = None) -> Results:
    results = dict(results)
    results.setdefault('ori_shape', results['img'].shape[:2])
    results.setdefault('img_shape', results['img'].shape[:2])
    for t in self.transforms:
      results = t(results, rng)
    results['img'] = np.ascontiguousarray(results['img'])
    if results.get('gt_seg_map') is not None:
      results['gt_seg_map'] = np.ascontiguousarray(results['gt_seg_map'])
    return results

  def __repr__(self):
    return 'Compose(' + ', '.join(type(t).__name__ for t in self.transforms) + ')'


def train_transforms(data_cfg, normalize: bool = True, input_rgb: bool = False) -> list:
  """The list of MMSeg's training transforms for ``config.data``."""
  crop_size = tuple(data_cfg['crop_size'])
  ts = [RGBToBGR()] if input_rgb else []
  if data_cfg['reduce_zero_label']:
    ts.append(ReduceZeroLabel())
  ts += [
      RandomResize(tuple(data_cfg['img_scale']), tuple(data_cfg['ratio_range']),
                   keep_ratio=True),
      RandomCrop(crop_size, cat_max_ratio=data_cfg['cat_max_ratio'],
                 ignore_index=data_cfg['ignore_index']),
      RandomFlip(prob=0.5),
      PhotoMetricDistortion(),
  ]
  if normalize:
    ts.append(Normalize(data_cfg['mean'], data_cfg['std'], to_rgb=True))
  ts.append(Pad(crop_size, pad_val=0, seg_pad_val=data_cfg['ignore_index']))
  return ts


def test_transforms(data_cfg, normalize: bool = True, input_rgb: bool = False) -> list:
  """The list of MMSeg's test transforms for ``config.data`` (label kept at full size): the
  Resize to ``test_img_scale``."""
  ts = [RGBToBGR()] if input_rgb else []
  ts.append(Resize(tuple(data_cfg['test_img_scale']), keep_ratio=True, resize_seg=False))
  if data_cfg['reduce_zero_label']:
    ts.append(ReduceZeroLabel())
  if normalize:
    ts.append(Normalize(data_cfg['mean'], data_cfg['std'], to_rgb=True))
  return ts


def train_pipeline(data_cfg, normalize: bool = True, input_rgb: bool = False
                   ) -> Callable[[Results, Rng], Results]:
  """MMSeg's training pipeline + SegDataPreProcessor for ``config.data``.

  Returns ``f(record, rng) -> results`` where ``record`` holds ``img`` (BGR uint8 HxWx3;
  RGB with ``input_rgb=True``) and ``gt_seg_map`` (uint8 HxW, raw dataset labels: the
  ADE20K ``reduce_zero_label`` is applied here). The output ``img`` is float32
  ``crop_size + (3,)`` normalized RGB (uint8 BGR with ``normalize=False``, still padded
  with 0), ``gt_seg_map`` uint8 ``crop_size`` padded with 255. ``rng`` must be fresh per
  record, e.g. ``np.random.default_rng((seed, epoch, index))``.
  """
  return Compose(train_transforms(data_cfg, normalize, input_rgb))


def test_pipeline(data_cfg, normalize: bool = True, input_rgb: bool = False
                  ) -> Callable[[Results, Optional[Rng]], Results]:
  """MMSeg's test pipeline for ``config.data``: ``f(record, rng=None) -> results``.

  ``img`` becomes float32 normalized RGB resized (keep ratio) into ``test_img_scale``;
  ``gt_seg_map`` stays at the original size (after ``reduce_zero_label``) for evaluation;
  ``ori_shape`` is the original (h, w). Deterministic: ``rng`` is ignored.
  """
  return Compose(test_transforms(data_cfg, normalize, input_rgb))
