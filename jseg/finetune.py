"""Fine-tuning (``--init_from``): a run's initial weights from another model's checkpoint.

The source is a jseg orbax checkpoint, a training workdir (its best checkpoint), an MMSeg
``.pth`` or MMSeg's published weights of a config (``zoo:NAME``, :mod:`jseg.zoo`). Variables
whose path and shape match are loaded; the classifiers (every head's ``conv_seg``, DANet's
``pam_cls_seg`` / ``cam_cls_seg``) keep their fresh initialization when the class count
differs; everything else must fit. Optimizer state and step start fresh: this is not resume.
"""
import logging

import flax
import numpy as np

from jseg import checkpoints, convert, pretrained, pth, weights


def is_classifier(path) -> bool:
  """Whether variable ``path`` belongs to a head's per-class 1x1 convolution."""
  return any(m == 'conv_seg' or m.endswith('cls_seg') for m in path[:-1])


def _match_variables(source, target, dtype):
  """:func:`jseg.convert.match_state_dict`'s result for a flat jseg ``source``."""
  loaded, missing, wrong = {}, [], {}
  for path, leaf in target.items():
    if path not in source:
      missing.append('/'.join(path))
    elif tuple(np.shape(source[path])) != tuple(leaf.shape):
      wrong[path] = f'{"/".join(path)} has {tuple(np.shape(source[path]))}, needs {leaf.shape}'
    else:
      loaded[path] = np.asarray(source[path], dtype)
  unexpected = ['/'.join(p) for p in source if p not in target]
  return loaded, missing, sorted(unexpected), wrong


def load(variables, config, source: str):
  """``variables`` with every variable that ``source`` has (same path, same shape) replaced by
  the source's. Wrongly shaped variables other than classifiers, or a source that covers
  under :data:`jseg.pretrained.MIN_LOADED` of the backbone, raise ValueError naming them."""
  path = weights.resolve(source, config)
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables))
  dtype = next(iter(flat.values())).dtype
  if path.endswith('.pth'):
    sd = convert.unwrap_state_dict(pth.load(path))
    loaded, missing, unexpected, wrong = convert.match_state_dict(sd, flat, dtype)
  else:
    source_flat = flax.traverse_util.flatten_dict(checkpoints.restore_variables(path))
    loaded, missing, unexpected, wrong = _match_variables(source_flat, flat, dtype)
  fatal = [message for p, message in wrong.items() if not is_classifier(p)]
  if fatal:
    raise ValueError(f'--init_from {path} does not fit {config.name}: wrongly shaped '
                     f'variables: {convert.listing(fatal)}')
  backbone = [p for p in flat if p[1] == 'backbone']
  found = sum(p in loaded for p in backbone)
  if found < pretrained.MIN_LOADED * len(backbone):
    raise ValueError(f'--init_from {path} does not fit {config.name}: it has {found} of the '
                     f'{len(backbone)} backbone variables; missing: {convert.listing(missing)}; '
                     f'unexpected: {convert.listing(unexpected)}')
  log = logging.getLogger('jseg')
  log.warning('--init_from: loaded %d of %d variables from %s', len(loaded), len(flat), path)
  if wrong:
    log.warning('re-initialized (the class count differs): %s',
                convert.listing('/'.join(p) for p in wrong))
  if missing:
    log.warning('not in %s (initialized as MMSeg does): %s', path, convert.listing(missing))
  if unexpected:
    log.warning('in %s but not in %s (ignored): %s', path, config.name,
                convert.listing(unexpected))
  return flax.traverse_util.unflatten_dict({**flat, **loaded})
