"""Pascal VOC 2012 + SBD augmented training set ("voc12aug"), as MMSeg's pascal_voc12_aug.py.

Source: ``VOCdevkit/VOC2012`` (or the folder holding it) after MMSeg's
``tools/dataset_converters/voc_aug.py`` has added SBD's labels as ``SegmentationClassAug/``
and the lists ``ImageSets/Segmentation/aug.txt`` / ``trainaug.txt``:

- train: ``train.txt`` with ``SegmentationClass`` labels, then the aug list with
  ``SegmentationClassAug`` labels (MMSeg's ConcatDataset; 1464 + 9118 = 10582 images). The aug
  list is ``aug.txt``, or ``trainaug.txt`` less ``train.txt`` (the same images: SBD's
  train+val lists and VOC's train list, minus VOC's val list).
- val: ``val.txt`` with ``SegmentationClass`` labels (1449 images).

VOC's palette PNGs are read as their indices (255 marks object borders), as MMSeg does.
"""
from typing import Dict, List

from jseg.data.sources import DataError, Sample, SourceTree

CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat',
           'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant',
           'sheep', 'sofa', 'train', 'tvmonitor')
PALETTE = ((0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (128, 0, 128),
           (0, 128, 128), (128, 128, 128), (64, 0, 0), (192, 0, 0), (64, 128, 0),
           (192, 128, 0), (64, 0, 128), (192, 0, 128), (64, 128, 128), (192, 128, 128),
           (0, 64, 0), (128, 64, 0), (0, 192, 0), (128, 192, 0), (0, 64, 128))
LISTS = 'ImageSets/Segmentation/'


def splits(source: str) -> Dict[str, List[Sample]]:
  tree = SourceTree(source)
  root = tree.find_prefix(LISTS + 'val.txt')
  if root is None:
    raise DataError(f'{source}: no {LISTS}val.txt found: point --source at VOCdevkit/VOC2012 '
                    '(or the folder holding it)')
  lists = f'{root}{LISTS}'
  for name in ('train.txt', 'val.txt'):
    if f'{lists}{name}' not in tree:
      raise DataError(f'{tree.where(lists + name)} is missing')
  train, val = tree.read_lines(f'{lists}train.txt'), tree.read_lines(f'{lists}val.txt')
  if f'{lists}aug.txt' in tree:
    aug = tree.read_lines(f'{lists}aug.txt')
  elif f'{lists}trainaug.txt' in tree:
    seen = set(train)
    aug = [i for i in tree.read_lines(f'{lists}trainaug.txt') if i not in seen]
  else:
    raise DataError(f'neither {tree.where(lists + "aug.txt")} nor trainaug.txt exists: add SBD\'s '
                    'labels with MMSeg\'s tools/dataset_converters/voc_aug.py first')
  leaked = sorted(set(aug) & set(val))
  if leaked:
    raise DataError(f'the aug list holds {len(leaked)} val images (e.g. {leaked[0]}): it must '
                    'be SBD train+val and VOC train minus VOC val')

  def samples(ids, label_dir):
    out = []
    for i in ids:
      img, label = f'{root}JPEGImages/{i}.jpg', f'{root}{label_dir}/{i}.png'
      for rel in (img, label):
        if rel not in tree:
          raise DataError(f'{tree.where(rel)} is missing (listed as {i!r})')
      out.append(tree.sample(i, img, label))
    return out

  return {'train': samples(train, 'SegmentationClass') + samples(aug, 'SegmentationClassAug'),
          'val': samples(val, 'SegmentationClass')}
