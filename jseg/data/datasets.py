"""Reading prepared data sets: ``open_split`` and ``dataset_info``.

A data set prepared by ``python -m jseg.data.prepare NAME`` lives in
``DATA_DIR/NAME/1.0.0/`` (TFDS's layout, array_record files); ``DATA_DIR`` is the
``data_dir`` argument, else ``$JSEG_DATA``, else ``~/jseg_data``.

    src = open_split('cityscapes', 'train')
    len(src); sample = src[0]  # {'img': BGR uint8 HxWx3, 'gt_seg_map': uint8 HxW, 'name': str}
    grain.MapDataset.source(src)  # a grain RandomAccessDataSource

Images come back exactly as ``cv2.imread`` of the user's file gives them (and so as MMSeg's
``LoadImageFromFile``); labels as MMSeg's ``LoadAnnotations`` reads them, before any
``reduce_zero_label`` (the pipeline's job).
"""
import dataclasses
import importlib
import os
from typing import Optional, Tuple

import cv2
from google.protobuf import message as protobuf_message
import numpy as np

from jseg.data import builder
from jseg.data.sources import DataError, decode_stored

# name -> (module, --source example for messages)
BUILDERS = {
    'synthetic': ('jseg.data.synthetic', None),
    'cityscapes': ('jseg.data.cityscapes', '/path/to/cityscapes'),
    'ade20k': ('jseg.data.ade20k', '/path/to/ADEChallengeData2016'),
    'voc12aug': ('jseg.data.voc12aug', '/path/to/VOCdevkit/VOC2012'),
    'pascal_context': ('jseg.data.pascal_context', '/path/to/VOCdevkit/VOC2010'),
    'pascal_context_59': ('jseg.data.pascal_context_59', '/path/to/VOCdevkit/VOC2010'),
    'coco_stuff10k': ('jseg.data.coco_stuff10k', '/path/to/coco_stuff10k'),
    'coco_stuff164k': ('jseg.data.coco_stuff164k', '/path/to/coco_stuff164k'),
    'mapillary_v1': ('jseg.data.mapillary', '/path/to/mapillary'),
    'mapillary_v1_65': ('jseg.data.mapillary_v1_65', '/path/to/mapillary'),
    'loveda': ('jseg.data.loveda', '/path/to/loveDA'),
    'potsdam': ('jseg.data.potsdam', '/path/to/potsdam'),
    'vaihingen': ('jseg.data.vaihingen', '/path/to/vaihingen'),
    'isaid': ('jseg.data.isaid', '/path/to/iSAID'),
    'dark_zurich': ('jseg.data.dark_zurich', '/path/to/dark_zurich'),
    'night_driving': ('jseg.data.night_driving', '/path/to/NighttimeDrivingTest'),
    'folder': ('jseg.data.folder', '/path/to/my_data'),
}


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  name: str
  classes: Tuple[str, ...]
  palette: Tuple[Tuple[int, int, int], ...]   # RGB per class
  reduce_zero_label: bool = False              # raw label 0 is "other" (ADE20K)

  @property
  def num_classes(self) -> int:
    return len(self.classes)

  @property
  def num_labels(self) -> int:
    """Raw label values allowed besides 255: num_classes (+1 where zero is reduced)."""
    return self.num_classes + int(self.reduce_zero_label)


def default_data_dir() -> str:
  return os.path.expanduser(os.environ.get('JSEG_DATA') or '~/jseg_data')


def _resolve(data_dir: Optional[str]) -> str:
  return os.path.abspath(os.path.expanduser(data_dir or default_data_dir()))


def prepare_command(name: str, data_dir: Optional[str] = None) -> str:
  """The command that prepares ``name`` (into ``data_dir`` where it is not the default)."""
  source = BUILDERS[name][1] if name in BUILDERS else BUILDERS['folder'][1]
  cmd = f'python -m jseg.data.prepare {name if name in BUILDERS else "folder"}'
  if source:
    cmd += f' --source={source}'
  if name not in BUILDERS:
    cmd += f' --name={name}'
  if data_dir and _resolve(data_dir) != _resolve(None):
    cmd += f' --out={data_dir}'
  return cmd


def _builtin_info(name: str) -> DatasetInfo:
  module = importlib.import_module(BUILDERS[name][0])
  return DatasetInfo(name=name, classes=tuple(module.CLASSES),
                     palette=tuple(tuple(p) for p in module.PALETTE),
                     reduce_zero_label=getattr(module, 'REDUCE_ZERO_LABEL', False))


def _not_prepared(name: str, data_dir: Optional[str]) -> FileNotFoundError:
  return FileNotFoundError(f'{name} is not prepared in {_resolve(data_dir)}: run '
                           f'{prepare_command(name, data_dir)}')


def _tfds_builder(name: str, data_dir: Optional[str]):
  path = builder.dataset_dir(_resolve(data_dir), name)
  if not os.path.isfile(os.path.join(path, 'dataset_info.json')):
    raise _not_prepared(name, data_dir)
  import tensorflow_datasets as tfds
  return tfds.builder_from_directory(path)


def _stored_info(name: str, tfds_builder) -> DatasetInfo:
  meta = tfds_builder.info.metadata
  return DatasetInfo(name=name, classes=tuple(meta['classes']),
                     palette=tuple(tuple(p) for p in meta['palette']),
                     reduce_zero_label=bool(meta.get('reduce_zero_label', False)))


def dataset_info(name: str, data_dir: Optional[str] = None) -> DatasetInfo:
  """Class names, RGB palette and num_classes of ``name``.

  The built-in data sets (every name in :data:`BUILDERS` but ``folder``: MMSeg's class names
  and palettes) need nothing on disk; a ``folder`` data set's come from its prepared copy.
  """
  if name in BUILDERS and name != 'folder':
    return _builtin_info(name)
  return _stored_info(name, _tfds_builder(name, data_dir))


class SegmentationSource:
  """Random access to one split: ``len(src)``, ``src[i]`` -> dict(img, gt_seg_map, name).

  A grain ``RandomAccessDataSource`` (picklable, so grain's worker processes can use it).
  Every record read is checked as prepare checks it (``builder.label_problem``): a record
  modified or corrupted since raises a DataError naming the data set, split, record index and
  sample name, e.g. ``cityscapes train record 17 (aachen_000017_000019): label has values
  [40, 77] outside 0..18 and ignore 255``.
  """

  def __init__(self, name: str, split: str, data_dir: Optional[str] = None):
    tfds_builder = _tfds_builder(name, data_dir)
    splits = tuple(tfds_builder.info.splits.keys())
    if split not in splits:
      raise ValueError(f'{name} has no split {split!r}; its splits: {", ".join(splits)}')
    self.name, self.split, self.data_dir = name, split, _resolve(data_dir)
    self.num_labels = _stored_info(name, tfds_builder).num_labels
    self._records = tfds_builder.as_data_source(split)

  def __len__(self) -> int:
    return len(self._records)

  def __getitem__(self, index: int) -> dict:
    where = f'{self.name} {self.split} record {int(index)}'
    try:
      record = self._records[int(index)]
    except protobuf_message.DecodeError as e:
      raise DataError(f'{where}: does not parse ({e})') from e
    name = record['name']
    name = name.decode('utf-8') if isinstance(name, bytes) else name
    where += f' ({name})'
    img = decode_stored(record['image'], cv2.IMREAD_COLOR)
    if img is None or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
      raise DataError(f'{where}: unreadable image')
    label = decode_stored(record['label'], cv2.IMREAD_UNCHANGED)
    problem = ('unreadable label' if label is None else
               builder.label_problem(img.shape, label, self.num_labels))
    if problem:
      raise DataError(f'{where}: {problem}')
    return dict(img=img, gt_seg_map=label, name=name)

  def __repr__(self) -> str:
    return f'SegmentationSource({self.name!r}, {self.split!r}, {len(self)} samples, {self.data_dir})'


def open_split(name: str, split: str, data_dir: Optional[str] = None) -> SegmentationSource:
  """The prepared ``split`` ('train', 'val', ...) of data set ``name``.

  Raises FileNotFoundError with the prepare command when ``name`` is not prepared.
  """
  return SegmentationSource(name, split, data_dir)
