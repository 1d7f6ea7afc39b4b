"""A procedural segmentation data set: classes are shapes, colours carry no information.

Each 64x64 image has 1-3 objects (disc, square, triangle, ring, cross; randomly sized, rotated,
overlapping, partly outside the frame) over a background with clutter: thin strokes, curves
and small blobs that are background. Objects and background each get a random colour and a
random texture (flat, gradient, stripes, smooth noise, checker), drawn from the same
distributions, and the image gets sensor noise: a pixel's colour says nothing about its class,
only shape does (``tests/test_data.py`` checks that a per-pixel colour classifier stays
below 30 mIoU). Sample ``i`` of a split comes from its own seed, so the set is the same on
every machine and any sample can be regenerated alone: ``generate('val', 7)``.
"""
import functools
from typing import Dict, List, Tuple

import cv2
import numpy as np

from jseg.data.sources import Sample, encode_png

CLASSES = ('background', 'disc', 'square', 'triangle', 'ring', 'cross')
PALETTE = ((0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
           (245, 130, 48))
SIZE = 64
NUM_SAMPLES = {'train': 2000, 'val': 200}
_SEEDS = {'train': 0, 'val': 1, 'test': 2}
_MIN_CONTRAST = 100.0  # RGB distance between an object's colour and the background's


def _coords(n: int, rng) -> Tuple[np.ndarray, np.ndarray]:
  """Pixel coordinates rotated by a random angle: (along, across)."""
  yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
  a = rng.uniform(0, np.pi)
  return xx * np.cos(a) + yy * np.sin(a), -xx * np.sin(a) + yy * np.cos(a)


def _texture(rng, n: int, colour: np.ndarray) -> np.ndarray:
  """n x n x 3 float image: ``colour`` mixed with a second colour by a random pattern."""
  kind = rng.integers(5)
  u, v = _coords(n, rng)
  if kind == 0:    # flat
    t = np.zeros((n, n), np.float32)
  elif kind == 1:  # linear gradient
    t = (u - u.min()) / (u.max() - u.min())
  elif kind == 2:  # stripes, soft or hard
    t = 0.5 + 0.5 * np.sin(2 * np.pi * u / rng.uniform(4, 12) + rng.uniform(0, 2 * np.pi))
    if rng.random() < 0.5:
      t = (t > 0.5).astype(np.float32)
  elif kind == 3:  # smooth noise
    k = int(rng.integers(3, 12))
    t = cv2.resize(rng.random((k, k)).astype(np.float32), (n, n), interpolation=cv2.INTER_CUBIC)
    t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
  else:            # checker
    cell = rng.uniform(3, 9)
    t = ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32)
  other = np.clip(colour + rng.uniform(-1, 1, 3) * rng.uniform(30, 90), 0, 255)
  return colour * (1 - t[..., None]) + other * t[..., None]


def _polygon(n: int, points) -> np.ndarray:
  mask = np.zeros((n, n), np.uint8)
  cv2.fillPoly(mask, [np.round(np.asarray(points) * 16).astype(np.int32)], 1,
               lineType=cv2.LINE_8, shift=4)
  return mask.astype(bool)


def _shape(cls: int, n: int, cx: float, cy: float, r: float, rng) -> np.ndarray:
  """Boolean mask of shape class ``cls`` centred at (cx, cy) with size ``r``."""
  a = rng.uniform(0, 2 * np.pi)

  def rotated(radii_angles):
    return [(cx + rr * np.cos(a + t), cy + rr * np.sin(a + t)) for rr, t in radii_angles]

  if cls in (1, 4):  # disc, ring
    yy, xx = np.mgrid[0:n, 0:n]
    d2 = (xx - cx)**2 + (yy - cy)**2
    mask = d2 <= r * r
    if cls == 4:
      mask &= d2 > (r * rng.uniform(0.45, 0.6))**2
    return mask
  if cls == 2:  # square
    return _polygon(n, rotated([(r * 1.13, np.pi / 4 + k * np.pi / 2) for k in range(4)]))
  if cls == 3:  # triangle, roughly equilateral
    jitter = rng.uniform(-0.2, 0.2, 3)
    return _polygon(n, rotated([(r * 1.25, k * 2 * np.pi / 3 + j) for k, j in
                                zip(range(3), jitter)]))
  # cross: two bars of half-length L and half-width w
  length, w = r * 1.1, r * rng.uniform(0.3, 0.4)
  outline = [(length, w), (w, w), (w, length), (-w, length), (-w, w), (-length, w),
             (-length, -w), (-w, -w), (-w, -length), (w, -length), (w, -w), (length, -w)]
  return _polygon(n, rotated([(np.hypot(x, y), np.arctan2(y, x)) for x, y in outline]))


def _clutter(rng, img: np.ndarray):
  """Background distractors: thin lines and curves, small blobs, in random colours."""
  n = img.shape[0]
  for _ in range(rng.integers(2, 7)):
    colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
    kind = rng.integers(3)
    if kind == 0:
      p, q = rng.uniform(-4, n + 4, (2, 2))
      cv2.line(img, tuple(int(x) for x in p), tuple(int(x) for x in q), colour,
               int(rng.integers(1, 3)))
    elif kind == 1:
      pts = np.cumsum(rng.normal(0, n / 6, (int(rng.integers(3, 6)), 2)), 0) + rng.uniform(0, n, 2)
      cv2.polylines(img, [pts.astype(np.int32)], False, colour, int(rng.integers(1, 3)))
    else:
      centre = tuple(int(x) for x in rng.uniform(0, n, 2))
      axes = tuple(int(x) for x in rng.integers(1, 4, 2))
      cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)


def generate(split: str, index: int, size: int = SIZE) -> Tuple[np.ndarray, np.ndarray]:
  """Sample ``index`` of ``split``: (BGR uint8 size x size x 3 image, uint8 label map)."""
  rng = np.random.default_rng([_SEEDS[split], index, size])
  bg = rng.uniform(0, 255, 3)
  img = np.ascontiguousarray(_texture(rng, size, bg))
  _clutter(rng, img)
  label = np.zeros((size, size), np.uint8)
  placed = []
  for _ in range(rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25])):
    for _ in range(20):  # objects may overlap, but none may hide most of another
      r = rng.uniform(0.16, 0.31) * size
      cx, cy = rng.uniform(0.5 * r, size - 0.5 * r, 2)
      if all(np.hypot(cx - x, cy - y) >= 0.75 * (r + rr) for x, y, rr in placed):
        break
    else:
      continue
    placed.append((cx, cy, r))
    cls = int(rng.integers(1, len(CLASSES)))
    mask = _shape(cls, size, cx, cy, r, rng)
    while True:
      colour = rng.uniform(0, 255, 3)
      if np.linalg.norm(colour - bg) >= _MIN_CONTRAST:
        break
    img[mask] = _texture(rng, size, colour)[mask]
    label[mask] = cls
  img += rng.normal(0, rng.uniform(2, 8), img.shape)
  if rng.random() < 0.3:
    img = cv2.GaussianBlur(img, (3, 3), 0)
  return np.clip(np.round(img), 0, 255).astype(np.uint8), label


def splits(source=None, num_samples: Dict[str, int] = None, size: int = SIZE
           ) -> Dict[str, List[Sample]]:
  """The synthetic data set's samples (no source files: ``source`` must be None)."""
  if source is not None:
    raise ValueError('the synthetic data set is generated: it takes no --source')
  counts = dict(NUM_SAMPLES, **(num_samples or {}))

  @functools.lru_cache(maxsize=2)
  def sample(split, i):
    return generate(split, i, size)

  def make(split, i):
    where = f'synthetic:{split}/{i}'
    return Sample(name=f'{split}_{i:05d}', image_path=where, label_path=where,
                  read_image=lambda: encode_png(sample(split, i)[0]),
                  read_label=lambda: sample(split, i)[1])

  return {split: [make(split, i) for i in range(n)] for split, n in counts.items()}
