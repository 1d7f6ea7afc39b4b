"""Decode heads, one file per method; ``build_head`` makes one from its config."""
import dataclasses

from jseg.models.heads.ann import ANNHead
from jseg.models.heads.aspp import ASPPHead
from jseg.models.heads.cc import CCHead
from jseg.models.heads.da import DAHead
from jseg.models.heads.decode_head import DecodeHead
from jseg.models.heads.fcn import FCNHead
from jseg.models.heads.gc import GCHead
from jseg.models.heads.nl import NLHead
from jseg.models.heads.ocr import OCRHead
from jseg.models.heads.psa import PSAHead
from jseg.models.heads.psp import PSPHead
from jseg.models.heads.sep_aspp import DepthwiseSeparableASPPHead
from jseg.models.heads.uper import UPerHead

HEADS = {cls.__name__: cls for cls in (FCNHead, PSPHead, ASPPHead, DepthwiseSeparableASPPHead)}
HEADS['OCRHead'] = OCRHead
HEADS.update({cls.__name__: cls for cls in (DAHead, ANNHead)})
HEADS.update({cls.__name__: cls for cls in (UPerHead, GCHead, NLHead)})
HEADS.update({cls.__name__: cls for cls in (PSAHead, CCHead)})

# Config keys that describe the head to MMSeg or to the loss, not to the module.
NON_MODULE_KEYS = ('type', 'in_channels', 'loss_decode', 'sampler', 'ignore_index')


def build_head(cfg, name: str) -> DecodeHead:
  """Builds the head ``cfg.type`` from its config; unknown keys are errors."""
  if cfg.type not in HEADS:
    raise ValueError(f'{name}.type={cfg.type!r} is not a head; valid: {sorted(HEADS)}')
  cls = HEADS[cfg.type]
  fields = {f.name for f in dataclasses.fields(cls)} - {'parent', 'name'}
  kwargs = {}
  for key, value in cfg.items():
    if key in NON_MODULE_KEYS:
      continue
    if key not in fields:
      raise ValueError(f'{name}.{key} is not an option of {cfg.type}; valid: {sorted(fields)}')
    kwargs[key] = tuple(value) if isinstance(value, list) else value
  return cls(**kwargs)
