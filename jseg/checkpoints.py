"""Model variables on disk: orbax directories (atomic: a killed save leaves no partial
checkpoint), training workdirs and MMSeg ``.pth`` files, read by one path for every mode."""
import os

import flax
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp


def save_variables(directory: str, variables) -> None:
  """Writes ``{'params', 'batch_stats'}`` to a new orbax checkpoint ``directory``."""
  directory = os.path.abspath(directory)
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(directory, variables)


def restore_variables(directory: str):
  """``{'params', 'batch_stats'}`` from :func:`save_variables`'s or a training state's checkpoint."""
  directory = os.path.abspath(directory)
  if not os.path.isdir(directory):
    raise FileNotFoundError(f'no orbax checkpoint at {directory}')
  with ocp.StandardCheckpointer() as ckptr:
    tree = ckptr.restore(directory)
  return {'params': tree['params'], 'batch_stats': tree['batch_stats']}


def best_checkpoint(workdir: str) -> str:
  """Directory of the best-mIoU training state saved in ``workdir``."""
  root = os.path.abspath(os.path.join(workdir, 'checkpoints', 'best'))
  steps = [int(d) for d in os.listdir(root) if d.isdigit()] if os.path.isdir(root) else []
  if not steps:
    raise FileNotFoundError(f'no checkpoint in {root}: train first, or pass --checkpoint')
  return os.path.join(root, str(max(steps)), 'default')


def resolve(source: str) -> str:
  """The file or orbax directory that ``source`` names: a ``.pth``, an orbax checkpoint, or a
  training workdir (its best checkpoint)."""
  source = os.fspath(source)
  if os.path.isdir(os.path.join(source, 'checkpoints')):
    return best_checkpoint(source)
  if not os.path.exists(source):
    raise FileNotFoundError(f'no checkpoint, workdir or .pth file at {source}')
  return source


def check_variables(variables, config, source: str = 'checkpoint') -> None:
  """Raises ValueError naming the missing, unexpected and wrongly shaped variables
  of ``variables`` for ``config``'s model (e.g. a checkpoint of another architecture)."""
  from jseg.convert import listing, variable_shapes
  want = flax.traverse_util.flatten_dict(flax.core.unfreeze(variable_shapes(config)), sep='/')
  got = flax.traverse_util.flatten_dict(flax.core.unfreeze(dict(variables)), sep='/')
  missing = [k for k in want if k not in got]
  unexpected = [k for k in got if k not in want]
  wrong = [f'{k} has {tuple(np.shape(got[k]))}, needs {tuple(want[k].shape)}'
           for k in want if k in got and tuple(np.shape(got[k])) != tuple(want[k].shape)]
  errors = [f'{what} variables: {listing(keys)}' for what, keys in
            (('missing', missing), ('unexpected', unexpected), ('wrongly shaped', wrong)) if keys]
  if errors:
    raise ValueError(f'{source} does not fit {config.name}:\n  ' + '\n  '.join(errors))


def load_variables(config, source: str) -> dict:
  """``{'params', 'batch_stats'}`` of ``config``'s model from ``source`` (see :func:`resolve`),
  every variable present with its shape: anything else raises ValueError naming the keys."""
  from jseg import convert
  path = resolve(source)
  if path.endswith('.pth'):
    return convert.mmseg_to_jseg(convert.load_pth(path), config)
  variables = restore_variables(path)
  check_variables(variables, config, f'checkpoint {path}')
  return jax.tree_util.tree_map(jnp.asarray, variables)
