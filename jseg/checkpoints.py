"""Orbax checkpoints on disk: model variables (atomic: a killed save leaves no partial
checkpoint), training workdirs (their best checkpoint, their config) and full-disk errors."""
import contextlib
import errno
import json
import os
import re

import flax
import jax
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
    # Onto this process's first device, whatever devices and processes saved it.
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree_util.tree_map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                                    ckptr.metadata(directory).item_metadata.tree)
    tree = ckptr.restore(directory, target)
  return {'params': tree['params'], 'batch_stats': tree['batch_stats']}


def best_checkpoint(workdir: str) -> str:
  """Directory of the best-mIoU training state saved in ``workdir``."""
  root = os.path.abspath(os.path.join(workdir, 'checkpoints', 'best'))
  steps = [int(d) for d in os.listdir(root) if d.isdigit()] if os.path.isdir(root) else []
  if not steps:
    raise FileNotFoundError(f'no checkpoint in {root}: train first, or pass --checkpoint')
  return os.path.join(root, str(max(steps)), 'default')


# What a resumed run may change: its schedule, evaluation, the (already loaded) ImageNet file and
# its prefix (model.pretrained_prefix) and how its batches are made (not what they hold).
RESUMABLE = ('train.', 'test.', 'model.pretrained', 'data.worker_processes', 'mesh.')
# Keys added to the config since workdirs were first written -> the key whose value the runs
# before them used in their place: a saved config without such a key resumes where its value is
# that key's (e.g. the test set of a run made before data.test_dataset was its training set).
ADDED = {'data.test_dataset': 'data.dataset', 'data.test_img_scale': 'data.img_scale'}


def write_atomic(path: str, text: str) -> None:
  """``path`` holds ``text`` or its previous content, never a part."""
  with open(path + '.tmp', 'w') as f:
    f.write(text)
  os.replace(path + '.tmp', path)


def check_workdir_config(workdir: str, config, resumed: bool, write: bool = True) -> None:
  """A new run stores ``config`` in ``workdir/config.json``; a resumed one must match it
  except for :data:`RESUMABLE` keys (and :data:`ADDED` keys it lacks, at their old values), else
  ValueError lists the keys that differ."""
  path = os.path.join(workdir, 'config.json')
  now = flax.traverse_util.flatten_dict(json.loads(config.to_json_best_effort()), sep='.')
  if resumed and os.path.exists(path):
    with open(path) as f:
      saved = flax.traverse_util.flatten_dict(json.load(f), sep='.')
    saved.update({k: saved[old] for k, old in ADDED.items() if k not in saved and old in saved})
    differ = [k for k in sorted(set(saved) | set(now)) if not k.startswith(RESUMABLE)
              and saved.get(k, '(absent)') != now.get(k, '(absent)')]
    if differ:
      raise ValueError(
          f'{workdir} holds a run of another config; resume with the same values or use a new '
          '--workdir (train.* and test.* may change). Saved -> now:\n  ' + '\n  '.join(
              f'{k}: {saved.get(k, "(absent)")} -> {now.get(k, "(absent)")}' for k in differ))
  elif write:
    os.makedirs(workdir, exist_ok=True)
    write_atomic(path, config.to_json_best_effort(indent=2))


def _disk_full(error: BaseException) -> bool:
  codes = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
  if isinstance(error, OSError):
    return error.errno in codes
  code = re.search(r"os_error_code='(\d+)'", str(error))  # tensorstore's errors (orbax arrays)
  return bool(code) and int(code.group(1)) in codes


@contextlib.contextmanager
def disk_errors(workdir: str):
  """A full disk while training in ``workdir`` becomes an OSError that says so: orbax's
  checkpoints are atomic, so the ones already listed are complete."""
  try:
    yield
  except Exception as e:
    if not _disk_full(e):
      raise
    root = os.path.join(os.path.abspath(workdir), 'checkpoints', 'last')
    steps = sorted(int(d) for d in os.listdir(root) if d.isdigit()) if os.path.isdir(root) else []
    raise OSError(errno.ENOSPC, f'no space left for {workdir}: {e}\nThe checkpoints of '
                  f'iterations {steps} in {root} are complete (the partial write is removed at '
                  'the next start); free space and run the same command to resume') from e
