"""LoveDA from the user's files, as MMSeg's loveda.py converter and LoveDADataset give it.

Source: the folder holding ``Train.zip`` and ``Val.zip`` as downloaded (zipped or not):
``{Train,Val}/{Rural,Urban}/images_png/N.png`` with ``masks_png/N.png``. The converter moves
Rural's and Urban's files into one folder a split (the names do not clash); MMSeg reads them in
sorted order. Labels are stored raw: 0 is no-data, 1..7 the classes; the pipeline applies
``reduce_zero_label`` (0 -> 255, then -1), as MMSeg's configs do. Splits: train (2522), val
(1669); Test.zip has no labels and is not used.
"""
from typing import Dict, List

from jseg.data.sources import DataError, Sample, SourceTree

CLASSES = ('background', 'building', 'road', 'water', 'barren', 'forest', 'agricultural')
PALETTE = ((255, 255, 255), (255, 0, 0), (255, 255, 0), (0, 0, 255), (159, 129, 183),
           (0, 255, 0), (255, 195, 128))
REDUCE_ZERO_LABEL = True
SPLITS = {'train': 'Train', 'val': 'Val'}
LOCATIONS = ('Rural', 'Urban')


def splits(source: str) -> Dict[str, List[Sample]]:
  tree = SourceTree(source)
  root = tree.find_prefix('Train/Rural/images_png/')
  if root is None:
    raise DataError(f'{source}: no Train/Rural/images_png/ folder found: point --source at the '
                    'folder holding Train.zip and Val.zip')
  out = {}
  for split, folder in SPLITS.items():
    samples = []
    for location in LOCATIONS:
      images = f'{root}{folder}/{location}/images_png/'
      for img in tree.list(images, '.png'):
        stem = img[len(images):-len('.png')]
        label = f'{root}{folder}/{location}/masks_png/{stem}.png'
        if label not in tree:
          raise DataError(f'image {tree.where(img)} has no label: {tree.where(label)} is '
                          'missing')
        samples.append(tree.sample(stem, img, label))
    if not samples:
      raise DataError(f'{source}: no {split} images (*.png under {root}{folder}/'
                      '{Rural,Urban}/images_png/)')
    out[split] = sorted(samples, key=lambda s: s.name)
  return out
