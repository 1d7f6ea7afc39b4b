"""Writes a data set's samples as a TensorFlow Datasets data set in array_record format.

The records are TFDS-serialized examples written with ``array_record`` directly, and TFDS's
``folder_dataset.write_metadata`` adds the metadata: the result is an ordinary TFDS data set
(``tfds.data_source`` / ``tfds.builder_from_directory`` read it), written without TensorFlow
and without holding a split in memory (docs/data.md says why not a GeneratorBasedBuilder).
Each record holds the image, the label map (class ids: palette PNGs become their indices,
Cityscapes ids become train ids) and the sample name. Two storages (``STORAGES``): 'encoded'
keeps the image's bytes as the user's file has them (JPEG / PNG, decoded at read time with
``cv2.imdecode`` like MMSeg's ``LoadImageFromFile``) and the label as a grayscale PNG; 'raw'
stores both decoded, as .npy bytes (the image as ``cv2.imread`` gives it), for readers that
cannot afford a decode (a 2048x1024 PNG takes ~60 ms of one core) at ~2-3x the disk.

Every sample is checked before it is written (readable image and label, same size, label values
in ``[0, num_labels)`` or 255: ``label_problem``, which readers run too) and the data set is built
in a temporary folder next to its destination, then renamed into place: a failed or killed
prepare leaves no data set behind.
"""
import os
import re
import shutil
import tempfile
from typing import Dict, List, Optional, Sequence

import numpy as np
import tqdm

from jseg.data import transforms
from jseg.data.sources import DataError, Sample, decode_image, encode_npy, encode_png

VERSION = '1.0.0'
IGNORE_INDEX = 255
# storage -> array_record writer options: random access to every record (group_size:1, as TFDS
# writes); raw records in snappy, which reads 2x faster than the default zstd and still packs a
# label map ~16x (its image barely compresses either way)
STORAGES = {'encoded': 'group_size:1', 'raw': 'group_size:1,snappy'}
NAME_RE = re.compile(r'^[a-z][a-z0-9_]*$')
FILENAME_TEMPLATE = '{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}'  # TFDS's default


def label_problem(image_shape, label: np.ndarray, num_labels: int) -> Optional[str]:
  """What is wrong with ``label`` for an image of ``image_shape`` (H, W[, C]); None if nothing.

  A label must be H x W with values in ``[0, num_labels)`` or IGNORE_INDEX. Cheap enough to run
  on every read: a histogram of a uint8 label.
  """
  if label.ndim != 2:
    return f'label has shape {label.shape}: expected a single-channel map of class ids'
  if label.shape != tuple(image_shape[:2]):
    return (f'size mismatch: image is {image_shape[1]}x{image_shape[0]} (WxH) but its label '
            f'is {label.shape[1]}x{label.shape[0]}')
  values = np.flatnonzero(transforms.label_counts(label)) if label.dtype == np.uint8 else \
      np.unique(label)
  bad = values[((values < 0) | (values >= num_labels)) & (values != IGNORE_INDEX)]
  if bad.size:
    return (f'label has values {bad.tolist()[:10]} outside 0..{num_labels - 1} and ignore '
            f'{IGNORE_INDEX}')
  return None


def check_sample(sample: Sample, num_labels: int, storage: str = 'encoded'):
  """The (image, label) bytes that a record of a valid sample stores (see ``STORAGES``); a
  DataError naming the files otherwise."""
  image = sample.read_image()
  img = decode_image(image, sample.image_path)
  label = sample.read_label()
  problem = label_problem(img.shape, label, num_labels)
  if problem:
    raise DataError(f'{sample.label_path} (image {sample.image_path}): {problem}')
  if storage == 'raw':
    return encode_npy(img), encode_npy(label.astype(np.uint8))
  return image, encode_png(label.astype(np.uint8))


def _features():
  import tensorflow_datasets as tfds
  return tfds.features.FeaturesDict({
      'image': tfds.features.Tensor(shape=(), dtype=np.object_),  # the file's bytes, or .npy
      'label': tfds.features.Tensor(shape=(), dtype=np.object_),  # grayscale PNG, or .npy
      'name': tfds.features.Text(),
  })


def _write_tfds(name: str, splits: Dict[str, Sequence[Sample]], num_labels: int, metadata: dict,
                path: str, storage: str):
  """Writes ``splits`` to ``path`` as TFDS data set ``name`` (one array_record file a split).

  Streams: memory does not grow with the data set (TFDS's own GeneratorBasedBuilder keeps a
  split in memory up to 1 GB and spills through TensorFlow's gfile beyond that).
  """
  import tensorflow_datasets as tfds
  from array_record.python.array_record_module import ArrayRecordWriter

  features = _features()
  os.makedirs(path)
  split_infos = []
  for split, samples in splits.items():
    template = tfds.core.ShardedFileTemplate(
        data_dir=path, template=FILENAME_TEMPLATE, dataset_name=name, split=split,
        filetype_suffix='array_record')
    writer = ArrayRecordWriter(os.fspath(template.sharded_filepath(shard_index=0, num_shards=1)),
                               STORAGES[storage])
    names, num_bytes = set(), 0
    try:
      for sample in tqdm.tqdm(samples, desc=f'{name} {split}', unit='image', mininterval=1):
        if sample.name in names:
          raise DataError(f'{split}: two samples named {sample.name!r} '
                          f'(the second is {sample.image_path})')
        names.add(sample.name)
        image, label = check_sample(sample, num_labels, storage)
        record = features.serialize_example({'image': image, 'label': label, 'name': sample.name})
        writer.write(record)
        num_bytes += len(record)
    finally:
      writer.close()
    split_infos.append(tfds.core.SplitInfo(name=split, shard_lengths=[len(samples)],
                                           num_bytes=num_bytes, filename_template=template))
  tfds.folder_dataset.write_metadata(
      data_dir=path, features=features, split_infos=split_infos,
      filename_template=FILENAME_TEMPLATE,
      description=f'jseg semantic segmentation data set {name!r}: ' + (
          'image and label map (class ids, 255 = ignore) as .npy bytes' if storage == 'raw' else
          'encoded image, grayscale PNG label (class ids, 255 = ignore)') + ', sample name.',
      metadata=tfds.core.MetadataDict({**metadata, 'storage': storage}), check_data=False)


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def _remove_stale_temps(data_dir: str, name: str):
  """Removes what killed prepares of ``name`` left (their process is gone)."""
  for entry in os.listdir(data_dir):
    m = re.match(rf'^\.{re.escape(name)}\.tmp-(\d+)-', entry)
    if m and not _pid_alive(int(m.group(1))):
      shutil.rmtree(os.path.join(data_dir, entry), ignore_errors=True)


def dataset_dir(data_dir: str, name: str) -> str:
  return os.path.join(data_dir, name, VERSION)


def write(name: str, splits: Dict[str, List[Sample]], num_labels: int, metadata: dict,
          data_dir: str, overwrite: bool = False, storage: str = 'encoded') -> str:
  """Validates and writes ``splits`` in ``storage`` (``STORAGES``); returns the data set's folder.

  ``num_labels``: label values allowed besides 255 (``num_classes``, plus one where the
  pipeline reduces zero labels, as ADE20K's raw labels run 0..150).
  """
  if not NAME_RE.match(name):
    raise DataError(f'data set name {name!r}: use lower-case letters, digits and _')
  if storage not in STORAGES:
    raise DataError(f'storage {storage!r}: expected one of {", ".join(STORAGES)}')
  for split, samples in splits.items():
    if not NAME_RE.match(split):
      raise DataError(f'{name}: split name {split!r}: use lower-case letters, digits and _')
    if not samples:
      raise DataError(f'{name}: split {split!r} has no samples')
  data_dir = os.path.abspath(os.path.expanduser(data_dir))
  final = dataset_dir(data_dir, name)
  if os.path.exists(final) and not overwrite:
    raise DataError(f'{name} is already prepared in {final}; pass --overwrite to rebuild it')
  os.makedirs(data_dir, exist_ok=True)
  _remove_stale_temps(data_dir, name)
  tmp = tempfile.mkdtemp(prefix=f'.{name}.tmp-{os.getpid()}-', dir=data_dir)
  try:
    _write_tfds(name, splits, num_labels, metadata, dataset_dir(tmp, name), storage)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    if os.path.exists(final):  # --overwrite: the old copy goes with the temporary folder
      os.rename(final, os.path.join(tmp, 'replaced'))
    os.rename(dataset_dir(tmp, name), final)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return final
