"""ImageNet-pretrained backbones as MMSeg's ``model.pretrained`` loads them.

``model.pretrained`` is an ``open-mmlab://`` or ``torchvision://`` name (resolved by
:data:`URLS`, mmengine's ``hub/openmmlab.json`` and ``hub/torchvision_0.12.json`` entries for the
zoo's backbones), a URL (downloaded once by :func:`jseg.download.fetch`) or a local ``.pth``.
Loading is MMSeg's ``load_checkpoint(strict=False)`` on the backbone, made loud and guarded:
missing and unexpected keys are logged, a wrongly shaped key or a file that covers under
:data:`MIN_LOADED` of the backbone fails before a run starts.
"""
import logging
import os
from typing import Optional

import flax

from jseg import convert, download, pth

# mmengine 0.10's hub/openmmlab.json and hub/torchvision_0.12.json (torchvision's
# ResNet*_Weights.IMAGENET1K_V1), for the backbones of MMSeg's zoo configs.
URLS = {
    'open-mmlab://resnet18_v1c':
        'https://download.openmmlab.com/pretrain/third_party/resnet18_v1c-b5776b93.pth',
    'open-mmlab://resnet50_v1c':
        'https://download.openmmlab.com/pretrain/third_party/resnet50_v1c-2cccc1ad.pth',
    'open-mmlab://resnet101_v1c':
        'https://download.openmmlab.com/pretrain/third_party/resnet101_v1c-e67eebb6.pth',
    'open-mmlab://msra/hrnetv2_w18_small':
        'https://download.openmmlab.com/pretrain/third_party/hrnetv2_w18_small-b5a04e21.pth',
    'open-mmlab://msra/hrnetv2_w18':
        'https://download.openmmlab.com/pretrain/third_party/hrnetv2_w18-00eb2006.pth',
    'open-mmlab://msra/hrnetv2_w48':
        'https://download.openmmlab.com/pretrain/third_party/hrnetv2_w48-d2186c55.pth',
    'torchvision://resnet18': 'https://download.pytorch.org/models/resnet18-f37072fd.pth',
    'torchvision://resnet50': 'https://download.pytorch.org/models/resnet50-0676ba61.pth',
    'torchvision://resnet101': 'https://download.pytorch.org/models/resnet101-63fe2227.pth',
}
MIN_LOADED = 0.9  # of the backbone's variables; a wrong file must not start a run from scratch


def resolve(pretrained: str) -> str:
  """The URL or local path of a ``model.pretrained`` value."""
  scheme, _, rest = pretrained.partition('://')
  if scheme in ('open-mmlab', 'openmmlab', 'torchvision'):
    name = ('torchvision://' if scheme == 'torchvision' else 'open-mmlab://') + rest
    if name not in URLS:
      raise ValueError(f'unknown pretrained model {pretrained!r} (not in jseg.pretrained.URLS; '
                       f'a URL or a local .pth also works); known: {", ".join(URLS)}')
    return URLS[name]
  return pretrained


def local_file(pretrained: str) -> str:
  """A local path for ``model.pretrained``: the file itself, or the cached download."""
  source = resolve(pretrained)
  if '://' in source:
    return download.fetch(source)
  if not os.path.isfile(source):
    raise FileNotFoundError(f'model.pretrained={pretrained!r}: no such file')
  return source


def load_backbone(variables, config, pretrained: Optional[str] = None):
  """``variables`` with the backbone's replaced by ``pretrained``'s (default:
  ``config.model.pretrained``), as MMSeg's ``init_weights()`` loads them. With
  ``config.model.pretrained_prefix`` (MMSeg's ``init_cfg=dict(type='Pretrained', prefix=...)``)
  only the file's keys that start with it count, without it (mmengine's
  ``_load_checkpoint_with_prefix``): e.g. the ``backbone.`` of a whole classifier's weights."""
  pretrained = pretrained or config.model.get('pretrained')
  if not pretrained:
    return variables
  path = local_file(pretrained)
  sd = convert.unwrap_state_dict(pth.load(path))
  prefix = config.model.get('pretrained_prefix')
  if prefix:
    sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    if not sd:
      raise ValueError(f'{path} has no keys starting with {prefix!r} '
                       f'(model.pretrained_prefix of {config.name})')
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables))
  backbone = {p: v for p, v in flat.items() if p[1] == 'backbone'}
  loaded, missing, unexpected, wrong = convert.match_state_dict(
      sd, backbone, dtype=next(iter(backbone.values())).dtype, strip='backbone.')
  if wrong:
    raise ValueError(f'{path} does not fit the backbone of {config.name}: wrongly shaped keys: '
                     f'{convert.listing(wrong.values())}')
  if len(loaded) < MIN_LOADED * len(backbone):
    raise ValueError(f'{path} does not fit the backbone of {config.name}: it has '
                     f'{len(loaded)} of its {len(backbone)} variables; missing keys: '
                     f'{convert.listing(missing)}; unexpected keys: {convert.listing(unexpected)}')
  log = logging.getLogger('jseg')
  log.warning('loaded %d of %d backbone variables from %s', len(loaded), len(backbone), path)
  if missing:
    log.warning('not in %s (initialized as MMSeg does): %s', path, convert.listing(missing))
  if unexpected:
    log.warning('in %s but not in the backbone (ignored): %s', path, convert.listing(unexpected))
  return flax.traverse_util.unflatten_dict({**flat, **loaded})
