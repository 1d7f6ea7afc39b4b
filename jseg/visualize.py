"""Palettes and overlays of label maps."""
from typing import Optional, Sequence

import cv2
import numpy as np


def default_palette(num_classes: int, seed: int = 0) -> np.ndarray:
  """A fixed random RGB palette, (num_classes, 3) uint8, for data sets without one."""
  return np.random.default_rng(seed).integers(0, 256, (num_classes, 3), dtype=np.uint8)


def colorize(label_map: np.ndarray, palette: np.ndarray, ignore_index: int = 255) -> np.ndarray:
  """RGB picture (H, W, 3) of a label map; ignored pixels are black."""
  palette = np.asarray(palette, np.uint8)
  out = palette[np.clip(label_map, 0, len(palette) - 1)]
  out[label_map == ignore_index] = 0
  return out


def overlay(image_rgb: np.ndarray, label_map: np.ndarray, palette: np.ndarray,
            opacity: float = 0.5) -> np.ndarray:
  """``image`` blended with the colours of ``label_map`` (both at the same size)."""
  color = colorize(label_map, palette).astype(np.float32)
  return np.clip(image_rgb * (1 - opacity) + color * opacity, 0, 255).astype(np.uint8)


def save_rgb(path: str, image_rgb: np.ndarray) -> None:
  if not cv2.imwrite(path, np.ascontiguousarray(image_rgb[..., ::-1])):
    raise OSError(f'could not write {path}')


def side_by_side(rows: Sequence[Sequence[np.ndarray]], gap: int = 4,
                 height: Optional[int] = None) -> np.ndarray:
  """Grid picture: each row a list of RGB images (resized to a common height)."""
  height = height or max(im.shape[0] for row in rows for im in row)
  out_rows = []
  for row in rows:
    ims = [cv2.resize(im, (max(1, round(im.shape[1] * height / im.shape[0])), height),
                      interpolation=cv2.INTER_NEAREST) for im in row]
    pad = np.full((height, gap, 3), 255, np.uint8)
    out_rows.append(np.concatenate(sum(([im, pad] for im in ims), [])[:-1], axis=1))
  width = max(r.shape[1] for r in out_rows)
  out_rows = [np.pad(r, ((0, gap), (0, width - r.shape[1]), (0, 0)), constant_values=255)
              for r in out_rows]
  return np.concatenate(out_rows, axis=0)
