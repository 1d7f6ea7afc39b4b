"""ISPRS Potsdam and Vaihingen, cut into tiles as MMSeg's potsdam.py / vaihingen.py converters do.

Also the tiling used by ``jseg.data.isaid``: ``tile_splits`` makes a Sample per tile, decoding
each large image (and its label) once, when its first tile is read, and holding one at a time.
Listing reads each image's file once more for its size (PIL parses the header, no pixels are
decoded): the tile names hold their coordinates and must be known before writing.

Both converters (``tools/dataset_converters/{potsdam,vaihingen}.py``, ``clip_big_image``):

- read the image with ``mmcv.imread`` (cv2, BGR) and write each tile as a PNG;
- map the label's colours to ids 0..6 by ``2 B + 3 G + 4 R`` (BGR as read) against their
  colour map: black (eroded boundaries) 0, then the six classes; any other colour with one of
  those sums gets its id, every other colour 0. ``reduce_zero_label`` (0 -> ignore) happens in
  the pipeline, as in MMSeg's configs;
- take ``clip_size`` x ``clip_size`` tiles (512) whose origins step by ``clip_size``, not by
  ``stride_size``: the converter counts ``ceil((n - clip) / stride) + 1`` origins (256 only
  sets the count) at ``k * clip_size``, and moves those that overrun the border back to end at
  it, so several coincide (one file, written repeatedly). A 6000 x 6000 Potsdam image gives
  origins 0, 512, ..., 5120, 5488: 12 x 12 = 144 tiles, 24 x 144 = 3456 train and 14 x 144 =
  2016 val tiles, as MMSeg documents.
- split by area: the listed train areas, every other area val. Tile names are
  ``{area}_{x0}_{y0}_{x1}_{y1}``; samples in MMSeg's order (sorted names).

Source (Potsdam): the folder holding ``2_Ortho_RGB.zip`` (``top_potsdam_{area}_RGB.tif``) and
``5_Labels_all_noBoundary.zip`` (``top_potsdam_{area}_label_noBoundary.tif``), zipped or not.
Source (Vaihingen): the folder holding ``ISPRS_semantic_labeling_Vaihingen.zip``
(``top/top_mosaic_09cm_{area}.tif``) and
``ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE.zip``
(``top_mosaic_09cm_{area}_noBoundary.tif``), zipped or not.
"""
import dataclasses
import functools
import io
import math
import re
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image

from jseg.data.sources import DataError, Sample, SourceTree, decode_image, encode_png

CLASSES = ('impervious_surface', 'building', 'low_vegetation', 'tree', 'car', 'clutter')
PALETTE = ((255, 255, 255), (0, 0, 255), (0, 255, 255), (0, 255, 0), (255, 255, 0),
           (255, 0, 0))
REDUCE_ZERO_LABEL = True
CLIP_SIZE, STRIDE_SIZE = 512, 256

# The converters' colour map, compared with mmcv.imread's BGR pixels: id i <- COLOR_MAP[i].
COLOR_MAP = ((0, 0, 0), (255, 255, 255), (255, 0, 0), (255, 255, 0), (0, 255, 0),
             (0, 255, 255), (0, 0, 255))
_WEIGHTS = np.array([2, 3, 4], np.uint16)
_SUM_TO_ID = np.zeros(int(_WEIGHTS.sum()) * 255 + 1, np.uint8)
for _id, _color in enumerate(COLOR_MAP):
  _SUM_TO_ID[np.dot(_color, _WEIGHTS)] = _id

POTSDAM_TRAIN = ('2_10', '2_11', '2_12', '3_10', '3_11', '3_12', '4_10', '4_11', '4_12', '5_10',
                 '5_11', '5_12', '6_10', '6_11', '6_12', '6_7', '6_8', '6_9', '7_10', '7_11',
                 '7_12', '7_7', '7_8', '7_9')
VAIHINGEN_TRAIN = ('area1', 'area11', 'area13', 'area15', 'area17', 'area21', 'area23', 'area26',
                   'area28', 'area3', 'area30', 'area32', 'area34', 'area37', 'area5', 'area7')


def colors_to_ids(bgr: np.ndarray) -> np.ndarray:
  """The converters' label ids (0..6) of a BGR label image (H x W x 3 uint8)."""
  return _SUM_TO_ID[np.dot(bgr, _WEIGHTS)]


def clip_boxes(h: int, w: int, clip_size: int = CLIP_SIZE,
               stride_size: int = STRIDE_SIZE) -> List[Tuple[int, int, int, int]]:
  """``clip_big_image``'s tiles (x0, y0, x1, y1) of an h x w image, in its order, each once."""
  def count(n):
    k = math.ceil((n - clip_size) / stride_size)
    return k if k * stride_size + clip_size >= n else k + 1

  x, y = np.meshgrid(np.arange(count(w) + 1), np.arange(count(h) + 1))
  xmin, ymin = x.ravel() * clip_size, y.ravel() * clip_size
  xmin_offset = np.where(xmin + clip_size > w, w - xmin - clip_size, np.zeros_like(xmin))
  ymin_offset = np.where(ymin + clip_size > h, h - ymin - clip_size, np.zeros_like(ymin))
  boxes = zip(xmin + xmin_offset, ymin + ymin_offset, np.minimum(xmin + clip_size, w),
              np.minimum(ymin + clip_size, h))
  return list(dict.fromkeys(tuple(int(v) for v in box) for box in boxes))


@dataclasses.dataclass(frozen=True)
class BigImage:
  """A large image and its label map, and the tiles to cut from them."""
  image_path: str                              # for messages
  label_path: str
  read_image: Callable[[], np.ndarray]         # BGR uint8, the size the tiles are for
  read_label: Callable[[], np.ndarray]         # H x W class ids, the same size
  tiles: Sequence[Tuple[str, Tuple[int, int, int, int]]]  # (name, (y0, y1, x0, x1))


def tile_splits(splits: Dict[str, List[BigImage]]) -> Dict[str, List[Sample]]:
  """A Sample per tile (a PNG image, its label), sorted by name within each split.

  A big image is decoded when one of its tiles is first read and kept until a tile of another
  one is: its tiles are read one after another (names start with the image's), so each is
  decoded once and one image and one label map are held at a time. Boxes are Python slices
  (a negative start counts from the end, as in the converters' numpy slicing).
  """
  held = {}  # 'image' / 'label' -> (BigImage, array)

  def cut(big, kind, box):
    if kind not in held or held[kind][0] is not big:
      held.pop(kind, None)  # free the last one before decoding the next
      held[kind] = (big, getattr(big, f'read_{kind}')())
    y0, y1, x0, x1 = box
    return held[kind][1][y0:y1, x0:x1]

  out = {}
  for split, bigs in splits.items():
    samples = [Sample(name=name, image_path=big.image_path, label_path=big.label_path,
                      read_image=lambda big=big, box=box: encode_png(cut(big, 'image', box)),
                      read_label=lambda big=big, box=box: cut(big, 'label', box))
               for big in bigs for name, box in big.tiles]
    out[split] = sorted(samples, key=lambda s: s.name)
  return out


def image_size(data: bytes, where: str) -> Tuple[int, int]:
  """(h, w) of an encoded image, from its header (PIL decodes no pixels for it)."""
  try:
    with Image.open(io.BytesIO(data)) as im:
      w, h = im.size
  except Exception as e:  # PIL raises several types for broken files
    raise DataError(f'{where}: unreadable image ({e})') from e
  return h, w


def check_size(array: np.ndarray, size: Tuple[int, int], where: str, image_where: str):
  """A DataError unless ``array`` (from ``where``) has the size (h, w) of ``image_where``."""
  if array.shape[:2] != tuple(size):
    raise DataError(f'{where} is {array.shape[1]}x{array.shape[0]} (WxH) but {image_where} is '
                    f'{size[1]}x{size[0]}')


def _read_image(tree: SourceTree, rel: str, size) -> np.ndarray:
  img = decode_image(tree.read(rel), tree.where(rel))  # mmcv.imread
  check_size(img, size, f'{tree.where(rel)} (decoded)', 'its header')
  return img


def _read_label(tree: SourceTree, rel: str, image: str, size) -> np.ndarray:
  label = decode_image(tree.read(rel), tree.where(rel))  # mmcv.imread: colour, BGR
  check_size(label, size, tree.where(rel), f'its image {tree.where(image)}')
  return colors_to_ids(label)


def _find(tree: SourceTree, pattern: str, what: str) -> Dict[str, str]:
  """area -> relative path of the files whose path matches ``pattern`` (group 1: the area)."""
  found = {}
  for rel in tree.list(''):
    m = re.search(pattern, rel)
    if m:
      if m.group(1) in found:
        raise DataError(f'two {what} files for {m.group(1)}: {tree.where(found[m.group(1)])} '
                        f'and {tree.where(rel)}')
      found[m.group(1)] = rel
  return found


def _splits(source: str, images: str, labels: str, label_file: str, train_areas: Sequence[str],
            clip_size: int, stride_size: int, hint: str) -> Dict[str, List[Sample]]:
  """Potsdam's and Vaihingen's splits: ``images`` / ``labels`` are path patterns (group 1: the
  area); ``label_file`` names an area's label file for messages."""
  tree = SourceTree(source)
  image_files, label_files = _find(tree, images, 'image'), _find(tree, labels, 'label')
  if not image_files:
    raise DataError(f'{source}: no images found ({hint})')
  splits = {'train': [], 'val': []}
  for area, img in sorted(image_files.items()):
    label = label_files.get(area)
    if label is None:
      raise DataError(f'image {tree.where(img)} has no label: no {label_file.format(area)} '
                      f'in {source} ({hint})')
    size = image_size(tree.read(img), tree.where(img))
    tiles = [('_'.join([area, *map(str, box)]), (box[1], box[3], box[0], box[2]))
             for box in clip_boxes(*size, clip_size, stride_size)]
    splits['train' if area in train_areas else 'val'].append(BigImage(
        image_path=tree.where(img), label_path=tree.where(label),
        read_image=functools.partial(_read_image, tree, img, size),
        read_label=functools.partial(_read_label, tree, label, img, size),
        tiles=tiles))
  for split, bigs in splits.items():
    if not bigs:
      raise DataError(f'{source}: no {split} areas among the images found: '
                      f'{", ".join(sorted(image_files))}')
  return tile_splits(splits)


def potsdam_splits(source: str, clip_size: int = CLIP_SIZE,
                   stride_size: int = STRIDE_SIZE) -> Dict[str, List[Sample]]:
  return _splits(
      source, r'(?:^|/)top_potsdam_(\d+_\d+)_RGB\.tif$',
      r'(?:^|/)top_potsdam_(\d+_\d+)_label_noBoundary\.tif$', 'top_potsdam_{}_label_noBoundary.tif',
      POTSDAM_TRAIN, clip_size, stride_size,
      'point --source at the folder holding 2_Ortho_RGB.zip and 5_Labels_all_noBoundary.zip')


def vaihingen_splits(source: str, clip_size: int = CLIP_SIZE,
                     stride_size: int = STRIDE_SIZE) -> Dict[str, List[Sample]]:
  return _splits(
      source, r'(?:^|/)top/top_mosaic_09cm_(area\d+)\.tif$',
      r'(?:^|/)top_mosaic_09cm_(area\d+)_noBoundary\.tif$', 'top_mosaic_09cm_{}_noBoundary.tif',
      VAIHINGEN_TRAIN, clip_size, stride_size,
      'point --source at the folder holding ISPRS_semantic_labeling_Vaihingen.zip and '
      'ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE.zip')
