"""Nighttime Driving and Dark Zurich: evaluation sets for Cityscapes-trained models.

MMSeg's NightDrivingDataset and DarkZurichDataset are CityscapesDataset with other file suffixes:
Cityscapes' 19 classes and palette, train-id labels (0..18, 255 = ignore) read as they are.
Each has one split, ``val`` (MMSeg's test set in its ``*_night-driving-1920x1080`` and
``*_dark-zurich-1920x1080`` configs), in MMSeg's order (sorted paths).

- Nighttime Driving: ``NighttimeDrivingTest.zip`` (or its folder, or the folder holding it):
  ``leftImg8bit/test/night/*_leftImg8bit.png`` with
  ``gtCoarse_daytime_trainvaltest/test/night/*_gtCoarse_labelTrainIds.png`` (50 images).
- Dark Zurich (``jseg.data.dark_zurich``): ``Dark_Zurich_val_anon.zip`` (or its folder):
  ``rgb_anon/val/night/GOPR0356/*_rgb_anon.png`` with
  ``gt/val/night/GOPR0356/*_gt_labelTrainIds.png`` (50 images).
"""
from typing import Dict, List

from jseg.data.cityscapes import CLASSES, PALETTE  # noqa: F401
from jseg.data.sources import DataError, Sample, SourceTree


def val_split(source: str, img_dir: str, img_suffix: str, label_dir: str, label_suffix: str,
              download: str) -> Dict[str, List[Sample]]:
  """{'val': the images under ``img_dir`` (any depth) and their labels under ``label_dir``}."""
  tree = SourceTree(source)
  root = tree.find_prefix(img_dir)
  if root is None:
    raise DataError(f'{source}: no {img_dir} folder found: point --source at the folder holding '
                    f'{download} (or its contents)')
  samples = []
  for img in tree.list(f'{root}{img_dir}', img_suffix):
    stem = img[len(f'{root}{img_dir}'):-len(img_suffix)]
    label = f'{root}{label_dir}{stem}{label_suffix}'
    if label not in tree:
      raise DataError(f'image {tree.where(img)} has no label: {tree.where(label)} is missing')
    samples.append(tree.sample(stem.split('/')[-1], img, label))
  if not samples:
    raise DataError(f'{source}: no images (*{img_suffix} under {root}{img_dir})')
  return {'val': samples}


def splits(source: str) -> Dict[str, List[Sample]]:
  return val_split(source, 'leftImg8bit/test/night/', '_leftImg8bit.png',
                   'gtCoarse_daytime_trainvaltest/test/night/', '_gtCoarse_labelTrainIds.png',
                   'NighttimeDrivingTest.zip')


def dark_zurich_splits(source: str) -> Dict[str, List[Sample]]:
  return val_split(source, 'rgb_anon/val/night/GOPR0356/', '_rgb_anon.png',
                   'gt/val/night/GOPR0356/', '_gt_labelTrainIds.png', 'Dark_Zurich_val_anon.zip')
