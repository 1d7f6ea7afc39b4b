"""Backbones; ``build_backbone`` makes one from its config."""
from jseg.models.backbones.hrnet import HRNet
from jseg.models.backbones.resnet import ResNet, ResNetV1c

BACKBONES = {'ResNet': ResNet, 'ResNetV1c': ResNetV1c, 'HRNet': HRNet}


def build_backbone(cfg, remat: bool = False):
  """Backbone ``cfg.type`` with the other keys as its options; ``remat``: its residual blocks
  under ``nn.remat``."""
  if cfg.type not in BACKBONES:
    raise ValueError(f'backbone.type={cfg.type!r} is not a backbone; valid: {sorted(BACKBONES)}')
  kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items() if k != 'type'}
  return BACKBONES[cfg.type](**kwargs, remat=remat)
