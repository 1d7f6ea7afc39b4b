"""Pascal Context (60 classes: background + 59), as MMSeg's PascalContextDataset reads it.

Source: ``VOCdevkit/VOC2010`` (or the folder holding it) after MMSeg's
``tools/dataset_converters/pascal_context.py`` has written, with the Detail API and
``trainval_merged.json``, the labels ``SegmentationClassContext/*.png`` (0 = background,
1..59 = the classes) and the lists ``ImageSets/SegmentationContext/{train,val}.txt``; images are
VOC2010's ``JPEGImages/*.jpg``. Splits in the lists' order, as MMSeg's ``ann_file``
(4998 train, 5105 val). ``pascal_context_59`` reads the same files.
"""
from typing import Dict, List

from jseg.data.sources import DataError, Sample, SourceTree

CLASSES = ('background', 'aeroplane', 'bag', 'bed', 'bedclothes', 'bench', 'bicycle', 'bird',
           'boat', 'book', 'bottle', 'building', 'bus', 'cabinet', 'car', 'cat', 'ceiling', 'chair',
           'cloth', 'computer', 'cow', 'cup', 'curtain', 'dog', 'door', 'fence', 'floor', 'flower',
           'food', 'grass', 'ground', 'horse', 'keyboard', 'light', 'motorbike', 'mountain',
           'mouse', 'person', 'plate', 'platform', 'pottedplant', 'road', 'rock', 'sheep',
           'shelves', 'sidewalk', 'sign', 'sky', 'snow', 'sofa', 'table', 'track', 'train', 'tree',
           'truck', 'tvmonitor', 'wall', 'water', 'window', 'wood')
PALETTE = ((120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50), (4, 200, 3),
           (120, 120, 80), (140, 140, 140), (204, 5, 255), (230, 230, 230), (4, 250, 7),
           (224, 5, 255), (235, 255, 7), (150, 5, 61), (120, 120, 70), (8, 255, 51), (255, 6, 82),
           (143, 255, 140), (204, 255, 4), (255, 51, 7), (204, 70, 3), (0, 102, 200),
           (61, 230, 250), (255, 6, 51), (11, 102, 255), (255, 7, 71), (255, 9, 224), (9, 7, 230),
           (220, 220, 220), (255, 9, 92), (112, 9, 255), (8, 255, 214), (7, 255, 224),
           (255, 184, 6), (10, 255, 71), (255, 41, 10), (7, 255, 255), (224, 255, 8), (102, 8, 255),
           (255, 61, 6), (255, 194, 7), (255, 122, 8), (0, 255, 20), (255, 8, 41), (255, 5, 153),
           (6, 51, 255), (235, 12, 255), (160, 150, 20), (0, 163, 255), (140, 140, 140),
           (250, 10, 15), (20, 255, 0), (31, 255, 0), (255, 31, 0), (255, 224, 0), (153, 255, 0),
           (0, 0, 255), (255, 71, 0), (0, 235, 255), (0, 173, 255), (31, 0, 255))
LISTS = 'ImageSets/SegmentationContext/'


def splits(source: str) -> Dict[str, List[Sample]]:
  tree = SourceTree(source)
  root = tree.find_prefix(LISTS + 'train.txt')
  if root is None:
    raise DataError(f'{source}: no {LISTS}train.txt found: point --source at VOCdevkit/VOC2010 '
                    '(or the folder holding it) after MMSeg\'s '
                    'tools/dataset_converters/pascal_context.py has converted the labels')
  out = {}
  for split in ('train', 'val'):
    lst = f'{root}{LISTS}{split}.txt'
    if lst not in tree:
      raise DataError(f'{tree.where(lst)} is missing')
    samples = []
    for i in tree.read_lines(lst):
      img, label = f'{root}JPEGImages/{i}.jpg', f'{root}SegmentationClassContext/{i}.png'
      for rel in (img, label):
        if rel not in tree:
          raise DataError(f'{tree.where(rel)} is missing (listed as {i!r} in {tree.where(lst)})')
      samples.append(tree.sample(i, img, label))
    if not samples:
      raise DataError(f'{tree.where(lst)} lists no images')
    out[split] = samples
  return out
