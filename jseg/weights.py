"""A model's variables from wherever they are: an orbax checkpoint, a training workdir (its best
checkpoint), an MMSeg ``.pth`` file (read without torch, converted) or MMSeg's published
weights by name (``zoo`` / ``zoo:NAME``, :mod:`jseg.zoo`): one path for every mode."""
import os

import flax
import jax
import jax.numpy as jnp
import numpy as np

from jseg import checkpoints, convert, pth, zoo


def resolve(source: str, config=None) -> str:
  """The ``.pth`` file or orbax directory that ``source`` names: one of them, a training workdir
  (its best checkpoint), or ``zoo`` / ``zoo:NAME`` (downloaded on first use;
  ``zoo`` is ``config``'s own)."""
  if zoo.is_zoo(source):
    return zoo.checkpoint(source, config)
  source = os.fspath(source)
  if os.path.isdir(os.path.join(source, 'checkpoints')):
    return checkpoints.best_checkpoint(source)
  if not os.path.exists(source):
    raise FileNotFoundError(f'no checkpoint, workdir or .pth file at {source} (zoo or '
                            'zoo:NAME load MMSeg\'s published weights)')
  return source


def check_variables(variables, config, source: str = 'checkpoint') -> None:
  """Raises ValueError naming the missing, unexpected and wrongly shaped variables
  of ``variables`` for ``config``'s model (e.g. a checkpoint of another architecture)."""
  want = flax.traverse_util.flatten_dict(flax.core.unfreeze(convert.variable_shapes(config)),
                                         sep='/')
  got = flax.traverse_util.flatten_dict(flax.core.unfreeze(dict(variables)), sep='/')
  missing = [k for k in want if k not in got]
  unexpected = [k for k in got if k not in want]
  wrong = [f'{k} has {tuple(np.shape(got[k]))}, needs {tuple(want[k].shape)}'
           for k in want if k in got and tuple(np.shape(got[k])) != tuple(want[k].shape)]
  errors = [f'{what} variables: {convert.listing(keys)}' for what, keys in
            (('missing', missing), ('unexpected', unexpected), ('wrongly shaped', wrong)) if keys]
  if errors:
    raise ValueError(f'{source} does not fit {config.name}:\n  ' + '\n  '.join(errors))


def load_variables(config, source: str) -> dict:
  """``{'params', 'batch_stats'}`` of ``config``'s model from ``source`` (see :func:`resolve`),
  every variable present with its shape: anything else raises ValueError naming the keys."""
  path = resolve(source, config)
  if path.endswith('.pth'):
    return convert.mmseg_to_jseg(pth.load(path), config)
  variables = checkpoints.restore_variables(path)
  check_variables(variables, config, f'checkpoint {path}')
  return jax.tree_util.tree_map(jnp.asarray, variables)
