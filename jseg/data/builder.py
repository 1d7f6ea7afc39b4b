"""Writes a data set's samples as a TensorFlow Datasets data set in array_record format.

One generic ``tfds.core.GeneratorBasedBuilder`` serves every data set: each record holds the
image's encoded bytes as the user's file has them (JPEG / PNG, decoded at read time with
``cv2.imdecode`` like MMSeg's ``LoadImageFromFile``), the label map re-encoded as a grayscale
PNG (palette PNGs become their indices, Cityscapes ids become train ids) and the sample name.
No TensorFlow is needed: the builder never asks TFDS to encode or decode an image.

Every sample is checked before it is written (readable image and label, same size, label values
in ``[0, num_labels)`` or 255) and the data set is built in a temporary folder next to its
destination, then renamed into place: a failed or killed prepare leaves no data set behind.
"""
import os
import re
import shutil
import tempfile
from typing import Dict, List, Sequence

import numpy as np
import tqdm

from jseg.data.sources import DataError, Sample, decode_image, encode_png

VERSION = '1.0.0'
IGNORE_INDEX = 255
NAME_RE = re.compile(r'^[a-z][a-z0-9_]*$')


def check_sample(sample: Sample, num_labels: int):
  """(encoded image, PNG label, H, W) of a valid sample; a DataError naming the file otherwise."""
  image = sample.read_image()
  img = decode_image(image, sample.image_path)
  label = sample.read_label()
  if label.ndim != 2:
    raise DataError(f'label {sample.label_path} has shape {label.shape}: expected a '
                    'single-channel image of class ids')
  if label.shape != img.shape[:2]:
    raise DataError(f'size mismatch: image {sample.image_path} is {img.shape[1]}x{img.shape[0]} '
                    f'(WxH) but its label {sample.label_path} is {label.shape[1]}x{label.shape[0]}')
  values = np.unique(label)
  bad = values[((values < 0) | (values >= num_labels)) & (values != IGNORE_INDEX)]
  if bad.size:
    raise DataError(f'label {sample.label_path} has values {bad.tolist()[:10]} outside '
                    f'[0, {num_labels}) and {IGNORE_INDEX} (the ignore index)')
  return image, encode_png(label.astype(np.uint8)), img.shape[0], img.shape[1]


def _builder(name: str, splits: Dict[str, Sequence[Sample]], num_labels: int, metadata: dict,
             data_dir: str):
  """A TFDS builder of ``name`` writing ``splits`` to ``data_dir/name/VERSION``."""
  import tensorflow_datasets as tfds
  from tensorflow_datasets.core import registered

  tfds.disable_progress_bar()  # ours below counts images against the split's total
  with registered.skip_registration():  # names like 'cityscapes' clash with TFDS's own

    class SegmentationBuilder(tfds.core.GeneratorBasedBuilder):
      VERSION = tfds.core.Version(VERSION)  # the module's
      # No checksums file to look for next to this code (finding it needs importlib_resources,
      # which TFDS 4.9 imports but newer etils no longer installs).
      code_path = None

      def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=f'jseg semantic segmentation data set {name!r}: encoded image, '
                        'grayscale PNG label (class ids, 255 = ignore), sample name.',
            features=tfds.features.FeaturesDict({
                'image': tfds.features.Tensor(shape=(), dtype=np.object_),
                'label': tfds.features.Tensor(shape=(), dtype=np.object_),
                'name': tfds.features.Text(),
            }),
            metadata=tfds.core.MetadataDict(metadata),
            disable_shuffling=True)  # records in the builders' sorted order

      def _split_generators(self, dl_manager):
        del dl_manager
        return {split: self._generate_examples(split, samples)
                for split, samples in splits.items()}

      def _generate_examples(self, split, samples):
        names = set()
        progress = tqdm.tqdm(samples, desc=f'{name} {split}', unit='image', mininterval=1)
        for i, sample in enumerate(progress):
          if sample.name in names:
            raise DataError(f'{split}: two samples named {sample.name!r} '
                            f'(the second is {sample.image_path})')
          names.add(sample.name)
          image, label, _, _ = check_sample(sample, num_labels)
          yield i, {'image': image, 'label': label, 'name': sample.name}

    SegmentationBuilder.name = name
  return SegmentationBuilder(data_dir=data_dir, file_format='array_record')


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
          data_dir: str, overwrite: bool = False) -> str:
  """Validates and writes ``splits``; returns the data set's folder.

  ``num_labels``: label values allowed besides 255 (``num_classes``, plus one where the
  pipeline reduces zero labels, as ADE20K's raw labels run 0..150).
  """
  if not NAME_RE.match(name):
    raise DataError(f'data set name {name!r}: use lower-case letters, digits and _')
  for split, samples in splits.items():
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
    builder = _builder(name, splits, num_labels, metadata, tmp)
    builder.download_and_prepare(download_dir=os.path.join(tmp, 'downloads'))
    os.makedirs(os.path.dirname(final), exist_ok=True)
    old = None
    if os.path.exists(final):
      old = os.path.join(tmp, 'replaced')
      os.rename(final, old)
    os.rename(dataset_dir(tmp, name), final)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return final
