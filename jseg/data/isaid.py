"""iSAID, cut into patches as MMSeg's tools/dataset_converters/isaid.py does (iSAIDDataset).

Source: the ``iSAID`` folder (or the folder holding it) laid out as MMSeg documents:
``{train,val}/images/*.zip`` (DOTA-v1.0's images, ``images/P0000.png``) and
``{train,val}/Semantic_masks/*.zip`` (``images/P0000_instance_color_RGB.png``), zipped or not;
``test/`` has no labels and is not used.

As the converter (``slide_crop_image`` / ``slide_crop_label``):

- the image is read with PIL (``convert('RGB')``), the mask with ``mmcv.imread`` (cv2); its
  RGB colours map to the 16 classes by the palette (0 = background is a class), any other colour
  to 0;
- an image smaller than a patch in one side and larger in the other, or smaller in both, is
  padded at the bottom / right to the patch size (image 0, label 255 = ignore). One that is
  smaller in one side and exactly the patch size in the other is not padded: its patches start
  above (left of) the image, at ``h - patch_size < 0``, and Python's slicing keeps only its last
  ``patch_size - h`` rows (columns), as in the converter;
- patches of ``patch_size`` (896) step by ``patch_size - overlap`` (512) from 0 while the start
  is inside the image; those that overrun are moved back to end at the border (several then
  coincide: one file). Names ``{image}_{y0}_{y1}_{x0}_{x1}``, sorted (MMSeg's order). Patches are
  stored as PNG (the converter writes BMP data under .png names: the same pixels).

Splits: train (33978 patches), val (11644), as MMSeg documents.
"""
import functools
import io
import os
from typing import Dict, List, Tuple

import cv2
import numpy as np
from PIL import Image

from jseg.data.isprs import BigImage, check_size, image_size, tile_splits
from jseg.data.sources import DataError, Sample, SourceTree, decode_image

CLASSES = ('background', 'ship', 'store_tank', 'baseball_diamond', 'tennis_court',
           'basketball_court', 'Ground_Track_Field', 'Bridge', 'Large_Vehicle', 'Small_Vehicle',
           'Helicopter', 'Swimming_pool', 'Roundabout', 'Soccer_ball_field', 'plane', 'Harbor')
PALETTE = ((0, 0, 0), (0, 0, 63), (0, 63, 63), (0, 63, 0), (0, 63, 127), (0, 63, 191),
           (0, 63, 255), (0, 127, 63), (0, 127, 127), (0, 0, 127), (0, 0, 191), (0, 0, 255),
           (0, 191, 127), (0, 127, 191), (0, 127, 255), (0, 100, 155))  # the converter's too
PATCH_SIZE, OVERLAP = 896, 384
SPLITS = ('train', 'val')
LABEL_SUFFIX = '_instance_color_RGB.png'


def colors_to_ids(bgr: np.ndarray) -> np.ndarray:
  """Class ids of a mask as cv2 reads it (BGR): palette colours -> their index, others 0."""
  packed = bgr[..., 2].astype(np.uint32) << 16
  packed |= bgr[..., 1].astype(np.uint32) << 8
  packed |= bgr[..., 0]
  ids = np.zeros(bgr.shape[:2], np.uint8)
  for i, (r, g, b) in enumerate(PALETTE):
    ids[packed == (r << 16 | g << 8 | b)] = i
  return ids


def padded_size(h: int, w: int, patch_size: int = PATCH_SIZE) -> Tuple[int, int]:
  """The size the converter pads an h x w image to (its three cases, no others)."""
  if h < patch_size and w > patch_size:
    return patch_size, w
  if h > patch_size and w < patch_size:
    return h, patch_size
  if h < patch_size and w < patch_size:
    return patch_size, patch_size
  return h, w


def patch_boxes(h: int, w: int, patch_size: int = PATCH_SIZE,
                overlap: int = OVERLAP) -> List[Tuple[int, int, int, int]]:
  """The converter's patches (y0, y1, x0, x1) of an h x w image (padded), in its order, once."""
  boxes = []
  for x in range(0, w, patch_size - overlap):
    for y in range(0, h, patch_size - overlap):
      x0, x1 = (x, x + patch_size) if x + patch_size <= w else (w - patch_size, w)
      y0, y1 = (y, y + patch_size) if y + patch_size <= h else (h - patch_size, h)
      boxes.append((y0, y1, x0, x1))
  return list(dict.fromkeys(boxes))


def _pad(array: np.ndarray, size: Tuple[int, int], value: int) -> np.ndarray:
  """``mmcv.impad(array, shape=size, pad_val=value)``: bottom / right."""
  pad = ((0, size[0] - array.shape[0]), (0, size[1] - array.shape[1]))
  return np.pad(array, pad + ((0, 0),) * (array.ndim - 2), constant_values=value)


def _read_image(tree: SourceTree, rel: str, size, padded) -> np.ndarray:
  try:
    with Image.open(io.BytesIO(tree.read(rel))) as im:
      rgb = np.asarray(im.convert('RGB'))
  except Exception as e:  # PIL raises several types for broken files
    raise DataError(f'{tree.where(rel)}: unreadable image ({e})') from e
  check_size(rgb, size, f'{tree.where(rel)} (decoded)', 'its header')
  return cv2.cvtColor(_pad(rgb, padded, 0), cv2.COLOR_RGB2BGR)


def _read_label(tree: SourceTree, rel: str, image: str, size, padded) -> np.ndarray:
  label = decode_image(tree.read(rel), tree.where(rel))  # mmcv.imread
  check_size(label, size, tree.where(rel), f'its image {image}')
  return _pad(colors_to_ids(label), padded, 255)


def splits(source: str, patch_size: int = PATCH_SIZE,
           overlap: int = OVERLAP) -> Dict[str, List[Sample]]:
  root = SourceTree(source).find_prefix('train/Semantic_masks/')
  if root is None:
    raise DataError(f'{source}: no train/Semantic_masks/ folder found: point --source at the '
                    'iSAID folder holding {train,val}/{images,Semantic_masks}/*.zip')
  bigs = {}
  for split in SPLITS:
    folder = os.path.join(source, root, split)
    images = SourceTree(os.path.join(folder, 'images'))
    masks = SourceTree(os.path.join(folder, 'Semantic_masks'))
    bigs[split] = []
    for img in images.list('images/', '.png'):
      stem = os.path.basename(img).split('.')[0]
      label = f'images/{stem}{LABEL_SUFFIX}'
      if label not in masks:
        raise DataError(f'image {images.where(img)} has no label: {masks.where(label)} is '
                        'missing')
      size = image_size(images.read(img), images.where(img))
      padded = padded_size(*size, patch_size)
      bigs[split].append(BigImage(
          image_path=images.where(img), label_path=masks.where(label),
          read_image=functools.partial(_read_image, images, img, size, padded),
          read_label=functools.partial(_read_label, masks, label, images.where(img), size,
                                       padded),
          tiles=[('_'.join(map(str, (stem,) + box)), box)
                 for box in patch_boxes(*padded, patch_size, overlap)]))
    if not bigs[split]:
      raise DataError(f'{source}: no {split} images (images/*.png in '
                      f'{os.path.join(folder, "images")}/*.zip)')
  return tile_splits(bigs)
