"""MMSegmentation's published weights by name, without PyTorch.

    seg = apis.init_segmentor('configs/pspnet.py:r50-d8_512x1024_80k_cityscapes', 'zoo')
    python -m jseg.main --config=configs/pspnet.py:r50-d8_512x1024_80k_cityscapes \
        --mode=predict --checkpoint=zoo --image=street.png --out=street_seg.png

``zoo`` is the config's own published checkpoint, ``zoo:NAME`` any other's (e.g.
``--init_from=zoo:pspnet_r50-d8_512x1024_80k_cityscapes`` to fine-tune it on your data). NAME is
jseg's config name (``METHOD_VARIANT``), MMSeg v0.x's or MMSeg 1.x's
(``pspnet_r50-d8_4xb2-80k_cityscapes-512x1024``). Each config file's ``WEIGHTS`` lists its
variants' checkpoints (from MMSeg 1.2.2's metafiles; ``tests/test_zoo.py`` checks all of them).
The ``.pth`` is downloaded once into ``$JSEG_CACHE`` (:func:`jseg.download.fetch`: progress,
sha256 check, atomic) and converted at each load (:func:`jseg.pth.load`, no torch): PSPNet
R-101's 260 MB file loads in 1.2-1.5 s in a new process, an orbax copy of its conversion in
1.7 s, so none is kept.
"""
import difflib
import functools
import os
import re
from typing import Dict, Tuple

from jseg import download
from jseg import config as jconfig

BASE_URL = 'https://download.openmmlab.com/mmsegmentation/v0.5'
CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs')
PREFIX = 'zoo'


def is_zoo(source) -> bool:
  """Whether a checkpoint argument names published weights (``zoo`` / ``zoo:NAME``)."""
  return isinstance(source, str) and (source == PREFIX or source.startswith(PREFIX + ':'))


@functools.lru_cache(maxsize=None)
def _config_file(method: str):
  return jconfig.config_module(os.path.join(CONFIGS, f'{method}.py'), method)


@functools.lru_cache(maxsize=1)
def _names() -> Dict[str, Tuple[str, str]]:
  """Every name of every config variant -> (config file's method, variant)."""
  names = {}
  for file in sorted(os.listdir(CONFIGS)):
    method, ext = os.path.splitext(file)
    if ext != '.py':
      continue
    prefix = jconfig.MMSEG_NAMES.get(method, (method, method))[1]
    for variant in _config_file(method).VARIANTS:
      for name in {f'{method}_{variant}', f'{prefix}_{variant}'}:
        names[name] = (method, variant)
      if jconfig.split_variant(variant).dataset not in jconfig.JSEG_DATASETS:
        mmseg_1x = os.path.basename(jconfig.mmseg_config_name(method, variant))[:-3]
        names[mmseg_1x] = (method, variant)
  return names


def find(name: str) -> Tuple[str, str]:
  """(config file's method, variant) of a config name; ValueError with the closest names."""
  if name not in _names():
    close = difflib.get_close_matches(name, _names(), n=5, cutoff=0.6)
    raise ValueError(f'no config is named {name!r}; closest: {", ".join(close) or "none"} '
                     f'(names are METHOD_VARIANT, e.g. pspnet_r50-d8_512x1024_80k_cityscapes)')
  return _names()[name]


def _distance(variant: str, other: str) -> tuple:
  """How far ``other`` is from ``variant``: data set, backbone, crop, schedule, then spelling."""
  a, b = jconfig.split_variant(variant), jconfig.split_variant(other)
  depth = lambda v: re.match(r'[a-z]*\d*', v.backbone).group()  # r18w16-d8 -> r18
  return (a.dataset != b.dataset, depth(a) != depth(b), a.backbone != b.backbone, a.crop != b.crop,
          a.schedule != b.schedule, -difflib.SequenceMatcher(None, variant, other).ratio())


def url(method: str, variant: str) -> str:
  """The URL of MMSeg's published checkpoint of ``configs/METHOD.py:VARIANT``; ValueError
  naming the closest variants that have one where MMSeg published none."""
  weights = getattr(_config_file(method), 'WEIGHTS', {})
  if variant not in weights:
    close = sorted(weights, key=lambda w: _distance(variant, w))[:5]
    raise ValueError(f'MMSeg published no weights for configs/{method}.py:{variant}; the '
                     f'closest variants with weights: {", ".join(close) or "none"}')
  value = weights[variant]
  if '://' in value:
    return value
  folder, prefix = jconfig.MMSEG_NAMES.get(method, (method, method))
  stem = f'{prefix}_{variant}'
  return f'{BASE_URL}/{folder}/{stem}/{stem}_{value}.pth'


def checkpoint(source: str, config=None, progress: bool = True) -> str:
  """The local ``.pth`` of published weights ``source`` (``zoo:NAME``, or ``zoo`` for
  ``config``'s own), downloaded on first use."""
  name = source[len(PREFIX) + 1:] if source != PREFIX else config and config.name
  if not name:
    raise ValueError("'zoo' names the config's own weights: give the config, or use zoo:NAME")
  return download.fetch(url(*find(name)), progress=progress)
