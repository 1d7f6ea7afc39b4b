"""Model variables on disk with orbax (atomic: a killed save leaves no partial checkpoint)."""
import os

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
