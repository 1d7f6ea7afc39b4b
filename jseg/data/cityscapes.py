"""Cityscapes (fine annotations) from the user's files, as MMSeg's CityscapesDataset reads it.

Source: a folder holding ``leftImg8bit/`` and ``gtFine/`` (or the folder above it), or the
downloaded ``leftImg8bit_trainvaltest.zip`` and ``gtFine_trainvaltest.zip`` unextracted.
Labels come from ``*_gtFine_labelTrainIds.png`` (what MMSeg's cityscapes converter writes);
where only ``*_gtFine_labelIds.png`` exist (as in the zip) they are mapped with Cityscapes'
id -> trainId table, which gives the same train ids as the converter: both draw the same
polygons, only the value written per class differs.
"""
from typing import Dict, List

import numpy as np

from jseg.data.sources import DataError, Sample, SourceTree, decode_label

CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
           'traffic sign', 'vegetation', 'terrain', 'sky', 'person', 'rider', 'car', 'truck',
           'bus', 'train', 'motorcycle', 'bicycle')
PALETTE = ((128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
           (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
           (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
           (0, 80, 100), (0, 0, 230), (119, 11, 32))
SPLITS = ('train', 'val')  # the test split has no public labels
IMG_SUFFIX = '_leftImg8bit.png'
TRAIN_ID_SUFFIX = '_gtFine_labelTrainIds.png'
ID_SUFFIX = '_gtFine_labelIds.png'

# cityscapesScripts' labels.py: label id -> train id (every other id, and -1, is 255).
ID_TO_TRAIN_ID = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
                  24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
_LUT = np.full(256, 255, np.uint8)
for _id, _train_id in ID_TO_TRAIN_ID.items():
  _LUT[_id] = _train_id


def ids_to_train_ids(label: np.ndarray) -> np.ndarray:
  """Maps a ``*_labelIds.png`` array to train ids (0..18, 255 = ignore)."""
  return _LUT[label.astype(np.uint8)]


def splits(source: str) -> Dict[str, List[Sample]]:
  tree = SourceTree(source)
  root = tree.find_prefix('leftImg8bit/train/')
  if root is None:
    raise DataError(f'{source}: no leftImg8bit/train/ folder (nor leftImg8bit_trainvaltest.zip)'
                    ' found: point --source at the folder holding leftImg8bit/ and gtFine/')
  out = {}
  for split in SPLITS:
    samples = []
    for img in tree.list(f'{root}leftImg8bit/{split}/', IMG_SUFFIX):
      stem = img[len(f'{root}leftImg8bit/{split}/'):-len(IMG_SUFFIX)]  # city/city_x_y
      train_ids = f'{root}gtFine/{split}/{stem}{TRAIN_ID_SUFFIX}'
      ids = f'{root}gtFine/{split}/{stem}{ID_SUFFIX}'
      if train_ids in tree:
        label, convert = train_ids, False
      elif ids in tree:
        label, convert = ids, True
      else:
        raise DataError(f'image {tree.where(img)} has no label: neither {tree.where(train_ids)}'
                        f' nor {tree.where(ids)} exists')
      samples.append(Sample(
          name=stem.split('/')[-1], image_path=tree.where(img), label_path=tree.where(label),
          read_image=tree.reader(img),
          read_label=(lambda label=label, convert=convert, tree=tree: _read_label(
              tree, label, convert))))
    if not samples:
      raise DataError(f'{source}: no {split} images (*{IMG_SUFFIX} under '
                      f'{root}leftImg8bit/{split}/)')
    out[split] = samples
  return out


def _read_label(tree: SourceTree, rel: str, convert: bool) -> np.ndarray:
  label = decode_label(tree.read(rel), tree.where(rel))
  if convert:
    if label.ndim != 2:
      raise DataError(f'label {tree.where(rel)} has shape {label.shape}: expected a '
                      'single-channel image of Cityscapes label ids')
    return ids_to_train_ids(label)
  return label
