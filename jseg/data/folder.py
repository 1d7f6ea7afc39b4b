"""A user's own data set: ``images/`` and ``masks/`` with matching stems, plus its classes.

Source layout::

    SOURCE/images/[SPLIT/]NAME.{jpg,jpeg,png,bmp,tif,tiff,webp}
    SOURCE/masks/[SPLIT/]NAME.png          (or .bmp / .tif / .tiff)
    SOURCE/classes.txt  or  SOURCE/classes.json

With split folders (``images/train/``, ``images/val/``, ...) each is a split; without, the
images are split into train and val by a hash of their name (``val_fraction`` of them in val,
the same on every run). Masks hold class ids (single channel, or a palette PNG; 255 = ignore),
or RGB colours of the palette, which are mapped to their class ids.

``classes.txt``: one class a line, optionally followed by its colour as ``R G B``
(``traffic light 250 170 30``; classes without one get MMSeg's default colour, numpy seed 42).
``classes.json``: a list of names, or
``{"classes": [...], "palette": [[R, G, B], ...]}``.
"""
import json
import zlib
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from jseg.data.sources import DataError, Sample, SourceTree, decode_label

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
MASK_EXTS = ('.png', '.bmp', '.tif', '.tiff')
CLASS_FILES = ('classes.json', 'classes.txt')


def default_palette(num_classes: int) -> Tuple[Tuple[int, int, int], ...]:
  """MMSeg's BaseSegDataset palette for classes without one."""
  rng = np.random.RandomState(42)
  return tuple(tuple(int(c) for c in p) for p in rng.randint(0, 255, size=(num_classes, 3)))


def read_classes(tree: SourceTree) -> Tuple[Tuple[str, ...], Tuple[Tuple[int, int, int], ...]]:
  """(class names, palette) from the source's classes.json or classes.txt."""
  for name in CLASS_FILES:
    if name in tree:
      break
  else:
    raise DataError(f'{tree.root}: no classes.txt or classes.json (the class names, one a line)')
  where = tree.where(name)
  text = tree.read(name).decode('utf-8')
  palette: List[Optional[Sequence[int]]] = []
  if name.endswith('.json'):
    try:
      data = json.loads(text)
    except json.JSONDecodeError as e:
      raise DataError(f'{where}: not valid JSON ({e})') from e
    if isinstance(data, dict):
      classes, palette = data.get('classes'), data.get('palette') or []
    else:
      classes = data
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
      raise DataError(f'{where}: expected a list of class names or {{"classes": [...]}}')
  else:
    classes = []
    for line in text.splitlines():
      words = line.split()
      if not words:
        continue
      if len(words) >= 4 and all(w.isdigit() for w in words[-3:]):
        classes.append(' '.join(words[:-3]))
        palette.append([int(w) for w in words[-3:]])
      else:
        classes.append(' '.join(words))
        palette.append(None)
    default = default_palette(len(classes))
    palette = [p if p is not None else default[i] for i, p in enumerate(palette)]
  if not classes:
    raise DataError(f'{where}: no classes')
  if len(set(classes)) != len(classes):
    raise DataError(f'{where}: class names repeat')
  if not palette:
    palette = default_palette(len(classes))
  if len(palette) != len(classes) or not all(
      p is not None and len(p) == 3 and all(isinstance(c, int) and 0 <= c <= 255 for c in p)
      for p in palette):
    raise DataError(f'{where}: a palette needs one colour R G B (0..255) per class')
  return tuple(classes), tuple(tuple(p) for p in palette)


def _split_of(stem: str, val_fraction: float) -> str:
  return 'val' if zlib.crc32(stem.encode('utf-8')) % 10000 < val_fraction * 10000 else 'train'


def _rgb_to_ids(label: np.ndarray, palette, where: str) -> np.ndarray:
  codes = (label[..., 0].astype(np.int64) << 16) | (label[..., 1].astype(np.int64) << 8) | \
      label[..., 2].astype(np.int64)
  lut = {(r << 16) | (g << 8) | b: i for i, (r, g, b) in enumerate(palette)}
  values, inverse = np.unique(codes, return_inverse=True)
  unknown = [v for v in values.tolist() if v not in lut]
  if unknown:
    c = unknown[0]
    raise DataError(f'label {where} is an RGB image with colour {(c >> 16, (c >> 8) & 255, c & 255)}'
                    ' that is not in the palette of classes.txt / classes.json')
  return np.array([lut[v] for v in values.tolist()], np.uint8)[inverse].reshape(codes.shape)


def _read_label(tree: SourceTree, rel: str, palette) -> np.ndarray:
  label = decode_label(tree.read(rel), tree.where(rel))
  if label.ndim == 3 and label.shape[-1] in (3, 4):
    if label.shape[-1] == 4:
      label = label[..., :3]
    return _rgb_to_ids(label, palette, tree.where(rel))
  return label


def splits(source: str, val_fraction: float = 0.1) -> Dict[str, List[Sample]]:
  tree = SourceTree(source)
  _, palette = read_classes(tree)
  images = [p for p in tree.list('images/') if p.lower().endswith(IMAGE_EXTS)]
  if not images:
    raise DataError(f'{source}: no images under images/ ({", ".join(IMAGE_EXTS)})')
  flat = any(p.count('/') == 1 for p in images)
  out: Dict[str, List[Sample]] = {}
  for img in images:
    rel = img[len('images/'):]
    stem = rel.rsplit('.', 1)[0]
    for ext in MASK_EXTS:
      mask = f'masks/{stem}{ext}'
      if mask in tree:
        break
    else:
      raise DataError(f'image {tree.where(img)} has no mask: expected '
                      f'{tree.where(f"masks/{stem}.png")}')
    if flat:
      split, name = _split_of(stem, val_fraction), stem
    else:
      split, _, name = stem.partition('/')
    out.setdefault(split, []).append(Sample(
        name=name, image_path=tree.where(img), label_path=tree.where(mask),
        read_image=tree.reader(img),
        read_label=lambda mask=mask: _read_label(tree, mask, palette)))
  return out
