"""Mapillary Vistas v1.2 (66 classes), as MMSeg's MapillaryDataset_v1 with mapillary_v1.py.

Source: the folder holding ``training/`` and ``validation/`` (``images/*.jpg``,
``v1.2/labels/*.png``) as the Vistas download unpacks, or the downloaded zip unextracted. The
v1.2 labels are 8-bit palette PNGs whose indices are the class ids (0..65; 65 'Unlabeled' is a
class in MMSeg's list, 255 is ignored): MMSeg's config reads them as they are (its guide: no
conversion is required), as here; the converter of MMSeg's projects/Mapillary_dataset
(``Image.open(label).convert('P')``) gives the same indices. Instance, panoptic and v2.0 labels
are not read. Splits: train (18000), val (2000), in sorted order.
"""
from typing import Dict, List

import numpy as np

from jseg.data.sources import DataError, Sample, SourceTree, decode_label

CLASSES = ('Bird', 'Ground Animal', 'Curb', 'Fence', 'Guard Rail', 'Barrier', 'Wall', 'Bike Lane',
           'Crosswalk - Plain', 'Curb Cut', 'Parking', 'Pedestrian Area', 'Rail Track', 'Road',
           'Service Lane', 'Sidewalk', 'Bridge', 'Building', 'Tunnel', 'Person', 'Bicyclist',
           'Motorcyclist', 'Other Rider', 'Lane Marking - Crosswalk', 'Lane Marking - General',
           'Mountain', 'Sand', 'Sky', 'Snow', 'Terrain', 'Vegetation', 'Water', 'Banner', 'Bench',
           'Bike Rack', 'Billboard', 'Catch Basin', 'CCTV Camera', 'Fire Hydrant', 'Junction Box',
           'Mailbox', 'Manhole', 'Phone Booth', 'Pothole', 'Street Light', 'Pole',
           'Traffic Sign Frame', 'Utility Pole', 'Traffic Light', 'Traffic Sign (Back)',
           'Traffic Sign (Front)', 'Trash Can', 'Bicycle', 'Boat', 'Bus', 'Car', 'Caravan',
           'Motorcycle', 'On Rails', 'Other Vehicle', 'Trailer', 'Truck', 'Wheeled Slow',
           'Car Mount', 'Ego Vehicle', 'Unlabeled')
PALETTE = ((165, 42, 42), (0, 192, 0), (196, 196, 196), (190, 153, 153), (180, 165, 180),
           (90, 120, 150), (102, 102, 156), (128, 64, 255), (140, 140, 200), (170, 170, 170),
           (250, 170, 160), (96, 96, 96), (230, 150, 140), (128, 64, 128), (110, 110, 110),
           (244, 35, 232), (150, 100, 100), (70, 70, 70), (150, 120, 90), (220, 20, 60),
           (255, 0, 0), (255, 0, 100), (255, 0, 200), (200, 128, 128), (255, 255, 255),
           (64, 170, 64), (230, 160, 50), (70, 130, 180), (190, 255, 255), (152, 251, 152),
           (107, 142, 35), (0, 170, 30), (255, 255, 128), (250, 0, 30), (100, 140, 180),
           (220, 220, 220), (220, 128, 128), (222, 40, 40), (100, 170, 30), (40, 40, 40),
           (33, 33, 33), (100, 128, 160), (142, 0, 0), (70, 100, 150), (210, 170, 100),
           (153, 153, 153), (128, 128, 128), (0, 0, 80), (250, 170, 30), (192, 192, 192),
           (220, 220, 0), (140, 140, 20), (119, 11, 32), (150, 0, 255), (0, 60, 100), (0, 0, 142),
           (0, 0, 90), (0, 0, 230), (0, 80, 100), (128, 64, 64), (0, 0, 110), (0, 0, 70),
           (0, 0, 192), (32, 32, 32), (120, 10, 10), (0, 0, 0))
SPLITS = {'train': 'training', 'val': 'validation'}
LABELS = 'v1.2/labels/'


def splits(source: str) -> Dict[str, List[Sample]]:
  tree = SourceTree(source)
  root = tree.find_prefix(f'training/{LABELS}')
  if root is None:
    raise DataError(f'{source}: no training/{LABELS} folder found: point --source at the folder '
                    'holding the Mapillary Vistas training/ and validation/ folders (or its zip)')
  out = {}
  for split, folder in SPLITS.items():
    image_dir = f'{root}{folder}/images/'
    samples = []
    for img in tree.list(image_dir, '.jpg'):
      stem = img[len(image_dir):-len('.jpg')]
      label = f'{root}{folder}/{LABELS}{stem}.png'
      if label not in tree:
        raise DataError(f'image {tree.where(img)} has no label: {tree.where(label)} is missing')
      samples.append(Sample(
          name=stem, image_path=tree.where(img), label_path=tree.where(label),
          read_image=tree.reader(img),
          read_label=lambda label=label: _read_label(tree, label)))
    if not samples:
      raise DataError(f'{source}: no {split} images (*.jpg under {image_dir})')
    out[split] = samples
  return out


def _read_label(tree: SourceTree, rel: str) -> np.ndarray:
  label = decode_label(tree.read(rel), tree.where(rel))
  if label.ndim != 2:
    raise DataError(f'label {tree.where(rel)} has shape {label.shape}: expected a v1.2 label, '
                    'an 8-bit palette PNG of class ids')
  return label
