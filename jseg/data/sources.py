"""A user's data set files, as folders or zips, and the samples that the builders read from them.

``SourceTree(root)`` indexes every file under ``root`` and every member of the ``*.zip`` files
directly in ``root`` under one set of '/'-separated relative paths (an extracted file wins over
the same path in a zip), so a builder does not care whether the user unpacked the archives.
"""
import dataclasses
import io
import os
import zipfile
from typing import Callable, Dict, List, Optional

import cv2
import numpy as np
from PIL import Image


class DataError(ValueError):
  """A problem with the user's files; the message names the file at fault."""


@dataclasses.dataclass(frozen=True)
class Sample:
  """One image and its label map, read lazily while the data set is written."""
  name: str                                    # unique within the split
  image_path: str                              # for error messages
  label_path: str
  read_image: Callable[[], bytes]              # encoded image (PNG / JPEG) as stored
  read_label: Callable[[], np.ndarray]         # H x W integer class ids


class SourceTree:
  """Relative path -> file, over a folder and the zip archives directly inside it."""

  def __init__(self, root: str):
    root = os.path.expanduser(root)
    if not os.path.isdir(root):
      raise DataError(f'source folder {root!r} does not exist')
    self.root = root
    self._files: Dict[str, Callable[[], bytes]] = {}
    self._where: Dict[str, str] = {}
    self._zips = []
    for name in sorted(os.listdir(root)):
      path = os.path.join(root, name)
      if name.lower().endswith('.zip') and os.path.isfile(path):
        try:
          archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile as e:
          raise DataError(f'{path}: not a readable zip archive ({e})') from e
        self._zips.append(archive)
        for member in archive.namelist():
          if not member.endswith('/'):
            self._files[member] = (lambda a=archive, m=member: a.read(m))
            self._where[member] = f'{path}:{member}'
    for dirpath, _, filenames in os.walk(root):
      for name in filenames:
        path = os.path.join(dirpath, name)
        rel = os.path.relpath(path, root).replace(os.sep, '/')
        self._files[rel] = (lambda p=path: _read_file(p))
        self._where[rel] = path

  def __contains__(self, rel: str) -> bool:
    return rel in self._files

  def read(self, rel: str) -> bytes:
    return self._files[rel]()

  def where(self, rel: str) -> str:
    """The file's path for messages: the real path, or ``archive.zip:member``."""
    return self._where.get(rel, os.path.join(self.root, rel))

  def reader(self, rel: str) -> Callable[[], bytes]:
    return self._files[rel]

  def sample(self, name: str, image: str, label: str) -> 'Sample':
    """The Sample of image file ``image`` and label-map file ``label`` (as stored: palette
    PNGs read as their indices)."""
    return Sample(name=name, image_path=self.where(image), label_path=self.where(label),
                  read_image=self.reader(image),
                  read_label=lambda: decode_label(self.read(label), self.where(label)))

  def read_lines(self, rel: str) -> List[str]:
    """The non-empty lines of text file ``rel``, stripped (an image list such as VOC's)."""
    return [line.strip() for line in self.read(rel).decode('utf-8').splitlines() if line.strip()]

  def list(self, prefix: str, suffix: str = '') -> List[str]:
    """Sorted relative paths under ``prefix`` ending in ``suffix``."""
    return sorted(p for p in self._files if p.startswith(prefix) and p.endswith(suffix))

  def find_prefix(self, marker: str) -> Optional[str]:
    """The shortest ``prefix`` such that some file lies under ``prefix + marker`` (or None).

    Lets the user point at a data set's folder or at the folder holding it (or its zip).
    """
    best = None
    for p in self._files:
      i = p.find(marker)
      while i >= 0:
        if i == 0 or p[i - 1] == '/':
          if best is None or len(p[:i]) < len(best):
            best = p[:i]
          break
        i = p.find(marker, i + 1)
    return best

  def close(self):
    for archive in self._zips:
      archive.close()


def _read_file(path: str) -> bytes:
  with open(path, 'rb') as f:
    return f.read()


def imdecode(data: bytes, flags: int) -> Optional[np.ndarray]:
  """``cv2.imdecode`` of encoded ``data``; None where it does not decode (or is empty)."""
  return cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None


def decode_image(data: bytes, where: str) -> np.ndarray:
  """BGR uint8 H x W x 3, exactly as ``cv2.imread`` (and MMSeg's LoadImageFromFile) gives it."""
  img = imdecode(data, cv2.IMREAD_COLOR)
  if img is None:
    raise DataError(f'{where}: unreadable image')
  return img


def decode_label(data: bytes, where: str) -> np.ndarray:
  """The label image's values as MMSeg's LoadAnnotations reads them (pillow, 'unchanged').

  Palette ('P' mode) PNGs give their indices, as in VOC's SegmentationClass.
  """
  try:
    with Image.open(io.BytesIO(data)) as im:
      label = np.array(im)
  except Exception as e:  # PIL raises several types for broken files
    raise DataError(f'{where}: unreadable label ({e})') from e
  if label.dtype == bool:
    label = label.astype(np.uint8)
  return label


def encode_npy(array: np.ndarray) -> bytes:
  """``array`` as the bytes of a .npy file: stored raw, it is read back without decoding."""
  buf = io.BytesIO()
  np.save(buf, array, allow_pickle=False)
  return buf.getvalue()


def decode_stored(data: bytes, flags: int) -> Optional[np.ndarray]:
  """A record's image or label: the array of :func:`encode_npy` bytes ('raw' storage), else
  :func:`imdecode` with ``flags``; None where it does not read."""
  if data[:6] == b'\x93NUMPY':
    try:
      return np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError:
      return None
  return imdecode(data, flags)


def encode_png(array: np.ndarray) -> bytes:
  ok, buf = cv2.imencode('.png', array)
  if not ok:
    raise ValueError(f'cv2 cannot encode a {array.dtype} array of shape {array.shape} as PNG')
  return buf.tobytes()
