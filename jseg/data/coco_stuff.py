"""COCO-Stuff 10k and 164k (171 classes), as MMSeg's COCOStuffDataset reads its converters' output.

Raw COCO-Stuff ids become MMSeg's train ids as ``tools/dataset_converters/coco_stuff164k.py`` and
``coco_stuff10k.py`` map them (``clsID_to_trID``): the 171 ids that have a class (``USED_IDS``,
0-based as in 164k's PNGs; COCO's 11 unused thing ids are not among them) become 0..170 in order
(164k; 255 = unlabeled stays 255), or 1..171 from the ids + 1 of 10k's ``.mat`` files (0 =
unlabeled stays 0). Any other value is left as it is, as the converters' loop leaves it.

- 164k (``coco_stuff164k``): ``train2017.zip``, ``val2017.zip`` and
  ``stuffthingmaps_trainval2017.zip`` as downloaded, or extracted as MMSeg's guide does
  (``images/{train2017,val2017}/*.jpg``, ``annotations/{train2017,val2017}/*.png``). A label is
  the converter's ``annotations/*/NAME_labelTrainIds.png`` where it exists, else the raw
  stuffthingmaps PNG, mapped.
- 10k (``coco_stuff10k``): ``cocostuff-10k-v1.1.zip`` or its extracted folder
  (``imageLists/{train,test}.txt``, ``images/*.jpg``, ``annotations/*.mat``, whose ``S`` is read
  with scipy's ``loadmat`` and mapped), or the converter's output (``images/{train2014,test2014}``,
  ``annotations/*/NAME_labelTrainIds.png``, used as they are). val is the test list (test2014).

Samples are in MMSeg's order (sorted image paths). ``coco_stuff10k`` / ``coco_stuff164k`` are
the data set modules.
"""
import io
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

from jseg.data.sources import DataError, Sample, SourceTree, decode_label

CLASSES = ('person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
           'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat',
           'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack',
           'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball',
           'kite', 'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket',
           'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple',
           'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair',
           'couch', 'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse',
           'remote', 'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink',
           'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear', 'hair drier',
           'toothbrush', 'banner', 'blanket', 'branch', 'bridge', 'building-other', 'bush',
           'cabinet', 'cage', 'cardboard', 'carpet', 'ceiling-other', 'ceiling-tile', 'cloth',
           'clothes', 'clouds', 'counter', 'cupboard', 'curtain', 'desk-stuff', 'dirt',
           'door-stuff', 'fence', 'floor-marble', 'floor-other', 'floor-stone', 'floor-tile',
           'floor-wood', 'flower', 'fog', 'food-other', 'fruit', 'furniture-other', 'grass',
           'gravel', 'ground-other', 'hill', 'house', 'leaves', 'light', 'mat', 'metal',
           'mirror-stuff', 'moss', 'mountain', 'mud', 'napkin', 'net', 'paper', 'pavement',
           'pillow', 'plant-other', 'plastic', 'platform', 'playingfield', 'railing', 'railroad',
           'river', 'road', 'rock', 'roof', 'rug', 'salad', 'sand', 'sea', 'shelf', 'sky-other',
           'skyscraper', 'snow', 'solid-other', 'stairs', 'stone', 'straw', 'structural-other',
           'table', 'tent', 'textile-other', 'towel', 'tree', 'vegetable', 'wall-brick',
           'wall-concrete', 'wall-other', 'wall-panel', 'wall-stone', 'wall-tile', 'wall-wood',
           'water-other', 'waterdrops', 'window-blind', 'window-other', 'wood')
PALETTE = ((0, 192, 64), (0, 192, 64), (0, 64, 96), (128, 192, 192), (0, 64, 64), (0, 192, 224),
           (0, 192, 192), (128, 192, 64), (0, 192, 96), (128, 192, 64), (128, 32, 192), (0, 0, 224),
           (0, 0, 64), (0, 160, 192), (128, 0, 96), (128, 0, 192), (0, 32, 192), (128, 128, 224),
           (0, 0, 192), (128, 160, 192), (128, 128, 0), (128, 0, 32), (128, 32, 0), (128, 0, 128),
           (64, 128, 32), (0, 160, 0), (0, 0, 0), (192, 128, 160), (0, 32, 0), (0, 128, 128),
           (64, 128, 160), (128, 160, 0), (0, 128, 0), (192, 128, 32), (128, 96, 128), (0, 0, 128),
           (64, 0, 32), (0, 224, 128), (128, 0, 0), (192, 0, 160), (0, 96, 128), (128, 128, 128),
           (64, 0, 160), (128, 224, 128), (128, 128, 64), (192, 0, 32), (128, 96, 0), (128, 0, 192),
           (0, 128, 32), (64, 224, 0), (0, 0, 64), (128, 128, 160), (64, 96, 0), (0, 128, 192),
           (0, 128, 160), (192, 224, 0), (0, 128, 64), (128, 128, 32), (192, 32, 128), (0, 64, 192),
           (0, 0, 32), (64, 160, 128), (128, 64, 64), (128, 0, 160), (64, 32, 128), (128, 192, 192),
           (0, 0, 160), (192, 160, 128), (128, 192, 0), (128, 0, 96), (192, 32, 0), (128, 64, 128),
           (64, 128, 96), (64, 160, 0), (0, 64, 0), (192, 128, 224), (64, 32, 0), (0, 192, 128),
           (64, 128, 224), (192, 160, 0), (0, 192, 0), (192, 128, 96), (192, 96, 128), (0, 64, 128),
           (64, 0, 96), (64, 224, 128), (128, 64, 0), (192, 0, 224), (64, 96, 128), (128, 192, 128),
           (64, 0, 224), (192, 224, 128), (128, 192, 64), (192, 0, 96), (192, 96, 0),
           (128, 64, 192), (0, 128, 96), (0, 224, 0), (64, 64, 64), (128, 128, 224), (0, 96, 0),
           (64, 192, 192), (0, 128, 224), (128, 224, 0), (64, 192, 64), (128, 128, 96),
           (128, 32, 128), (64, 0, 192), (0, 64, 96), (0, 160, 128), (192, 0, 64), (128, 64, 224),
           (0, 32, 128), (192, 128, 192), (0, 64, 224), (128, 160, 128), (192, 128, 0),
           (128, 64, 32), (128, 32, 64), (192, 0, 128), (64, 192, 32), (0, 160, 64), (64, 0, 0),
           (192, 192, 160), (0, 32, 64), (64, 128, 128), (64, 192, 160), (128, 160, 64),
           (64, 128, 0), (192, 192, 32), (128, 96, 192), (64, 0, 128), (64, 64, 32), (0, 224, 192),
           (192, 0, 0), (192, 64, 160), (0, 96, 192), (192, 128, 128), (64, 64, 160),
           (128, 224, 192), (192, 128, 64), (192, 64, 32), (128, 96, 64), (192, 0, 192),
           (0, 192, 32), (64, 224, 64), (64, 0, 64), (128, 192, 160), (64, 96, 64), (64, 128, 192),
           (0, 192, 160), (192, 224, 64), (64, 128, 64), (128, 192, 32), (192, 32, 192),
           (64, 64, 192), (0, 64, 32), (64, 160, 192), (192, 64, 64), (128, 64, 160), (64, 32, 192),
           (192, 192, 192), (0, 64, 160), (192, 160, 192), (192, 192, 0), (128, 64, 96),
           (192, 32, 64), (192, 64, 128), (64, 192, 96), (64, 160, 64), (64, 64, 0))
USED_IDS = (*range(0, 11), *range(12, 25), 26, 27, *range(30, 44), *range(45, 65), 66, 69,
            *range(71, 82), *range(83, 90), *range(91, 182))
_LUT_164K = np.arange(256, dtype=np.uint8)
_LUT_164K[list(USED_IDS)] = np.arange(len(USED_IDS))
_LUT_10K = np.arange(256, dtype=np.uint8)
_LUT_10K[[i + 1 for i in USED_IDS]] = np.arange(1, len(USED_IDS) + 1)
SPLITS_164K = {'train': 'train2017', 'val': 'val2017'}
SPLITS_10K = {'train': 'train2014', 'val': 'test2014'}   # the converter's folders
LISTS_10K = {'train': 'train.txt', 'val': 'test.txt'}    # cocostuff-10k's imageLists/
TRAIN_ID_SUFFIX = '_labelTrainIds.png'

Reader = Callable[[SourceTree, str], np.ndarray]


def ids_to_train_ids_164k(ids: np.ndarray) -> np.ndarray:
  """A stuffthingmaps PNG's ids (uint8) -> train ids, as coco_stuff164k.py."""
  return _LUT_164K[ids]


def ids_to_train_ids_10k(ids: np.ndarray) -> np.ndarray:
  """A 10k ``.mat``'s ``S`` -> train ids, as coco_stuff10k.py (which casts ``S`` to uint8 first)."""
  return _LUT_10K[ids.astype(np.uint8)]


def _read_train_ids(tree: SourceTree, rel: str) -> np.ndarray:
  return decode_label(tree.read(rel), tree.where(rel))


def _read_stuffthingmap(tree: SourceTree, rel: str) -> np.ndarray:
  ids = decode_label(tree.read(rel), tree.where(rel))
  if ids.ndim != 2 or ids.dtype != np.uint8:
    raise DataError(f'label {tree.where(rel)} is {ids.dtype} of shape {ids.shape}: expected a '
                    'single-channel 8-bit stuffthingmaps PNG of COCO-Stuff ids')
  return ids_to_train_ids_164k(ids)


def _mat_reader(loadmat) -> Reader:
  def read(tree: SourceTree, rel: str) -> np.ndarray:
    try:
      mat = loadmat(io.BytesIO(tree.read(rel)))
    except Exception as e:  # scipy raises several types for broken files
      raise DataError(f'{tree.where(rel)}: unreadable .mat annotation ({e})') from e
    ids = mat.get('S')
    if not isinstance(ids, np.ndarray) or ids.ndim != 2:
      raise DataError(f'{tree.where(rel)}: no 2-D label map S in the .mat annotation')
    return ids_to_train_ids_10k(ids)
  return read


def _sample(tree: SourceTree, name: str, img: str, label: str, read: Reader) -> Sample:
  return Sample(name=name, image_path=tree.where(img), label_path=tree.where(label),
                read_image=tree.reader(img), read_label=lambda: read(tree, label))


def _image_folder(tree: SourceTree, image_dir: str,
                  labels: Sequence[Tuple[str, str, Reader]]) -> List[Sample]:
  """Every ``*.jpg`` under ``image_dir`` with the first of ``labels`` (dir, suffix, reader) that
  exists for it."""
  samples = []
  for img in tree.list(image_dir, '.jpg'):
    stem = img[len(image_dir):-len('.jpg')]
    candidates = [(f'{folder}{stem}{suffix}', read) for folder, suffix, read in labels]
    found = next(((rel, read) for rel, read in candidates if rel in tree), None)
    if found is None:
      raise DataError(f'image {tree.where(img)} has no label: '
                      + ' nor '.join(tree.where(rel) for rel, _ in candidates) + ' exists')
    samples.append(_sample(tree, stem, img, *found))
  if not samples:
    raise DataError(f'{tree.root}: no images (*.jpg under {image_dir})')
  return samples


def splits_164k(source: str) -> Dict[str, List[Sample]]:
  tree = SourceTree(source)
  root = tree.find_prefix('images/train2017/')
  if root is not None:
    image_dir = f'{root}images/'
  else:  # train2017.zip / val2017.zip hold train2017/*.jpg, val2017/*.jpg
    root = image_dir = tree.find_prefix('train2017/')
  if root is None:
    raise DataError(f'{source}: neither images/train2017/ nor train2017.zip found: point --source '
                    'at the folder holding the COCO-Stuff 164k files')
  return {split: _image_folder(tree, f'{image_dir}{folder}/', [
      (f'{root}annotations/{folder}/', TRAIN_ID_SUFFIX, _read_train_ids),
      (f'{root}annotations/{folder}/', '.png', _read_stuffthingmap),
      (f'{root}{folder}/', '.png', _read_stuffthingmap),  # in stuffthingmaps_trainval2017.zip
  ]) for split, folder in SPLITS_164K.items()}


def splits_10k(source: str) -> Dict[str, List[Sample]]:
  tree = SourceTree(source)
  root = tree.find_prefix('images/train2014/')
  if root is not None:  # converted by MMSeg's coco_stuff10k.py
    return {split: _image_folder(tree, f'{root}images/{folder}/', [
        (f'{root}annotations/{folder}/', TRAIN_ID_SUFFIX, _read_train_ids)])
            for split, folder in SPLITS_10K.items()}
  root = tree.find_prefix('imageLists/train.txt')
  if root is None:
    raise DataError(f'{source}: neither imageLists/train.txt nor images/train2014/ found: point '
                    '--source at cocostuff-10k-v1.1.zip\'s folder (or the folder it was '
                    'extracted to, or MMSeg\'s converted coco_stuff10k)')
  try:
    from scipy.io import loadmat
  except ImportError as e:
    raise DataError('reading COCO-Stuff 10k\'s .mat annotations needs scipy (pip install scipy); '
                    'or convert them with MMSeg\'s tools/dataset_converters/coco_stuff10k.py and '
                    'point --source at its output') from e
  read_mat = _mat_reader(loadmat)
  out = {}
  for split, name in LISTS_10K.items():
    lst = f'{root}imageLists/{name}'
    if lst not in tree:
      raise DataError(f'{tree.where(lst)} is missing')
    samples = []
    for i in sorted(tree.read_lines(lst)):  # the converted folder's order
      img, label = f'{root}images/{i}.jpg', f'{root}annotations/{i}.mat'
      for rel in (img, label):
        if rel not in tree:
          raise DataError(f'{tree.where(rel)} is missing (listed as {i!r} in {tree.where(lst)})')
      samples.append(_sample(tree, i, img, label, read_mat))
    if not samples:
      raise DataError(f'{tree.where(lst)} lists no images')
    out[split] = samples
  return out
