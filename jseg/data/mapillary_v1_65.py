"""Mapillary Vistas v1.2 without its 'Unlabeled' class (65 classes), as MMSeg's
mapillary_v1_65.py: MapillaryDataset_v1 with the first 65 classes as ``metainfo``, whose
``label_map`` (BaseSegDataset.get_label_map: a class not in the list -> 255) makes
LoadAnnotations ignore label 65. The files are ``mapillary_v1``'s; the labels are stored with
65 already 255.
"""
import dataclasses
from typing import Dict, List

import numpy as np

from jseg.data import mapillary
from jseg.data.sources import Sample

CLASSES = mapillary.CLASSES[:-1]
PALETTE = mapillary.PALETTE[:-1]
UNLABELED = len(CLASSES)  # 65


def _ignore_unlabeled(label: np.ndarray) -> np.ndarray:
  return np.where(label == UNLABELED, 255, label).astype(label.dtype)


def splits(source: str) -> Dict[str, List[Sample]]:
  return {split: [dataclasses.replace(s, read_label=lambda s=s: _ignore_unlabeled(s.read_label()))
                  for s in samples]
          for split, samples in mapillary.splits(source).items()}
