"""Import MMSegmentation checkpoints: MMSeg state_dict -> jseg ``{'params', 'batch_stats'}``.

jseg's module names follow MMSeg's, so a jseg variable path joined with dots is
the MMSeg key: ``params/backbone/layer1/0/conv1/kernel`` <-> ``backbone.layer1.0.conv1.weight``.

    python -m jseg.convert --config=configs/pspnet.py:r50-d8_512x1024_80k_cityscapes \
        --checkpoint=pspnet_r50.pth --out=/tmp/pspnet_r50
"""
import collections
from typing import Dict, Mapping

import flax
import jax
import jax.numpy as jnp
import numpy as np

# (collection, jseg leaf name, is conv kernel) -> MMSeg tensor name
_SUFFIX = {('params', 'kernel'): 'weight', ('params', 'scale'): 'weight',
           ('params', 'bias'): 'bias', ('params', 'gamma'): 'gamma',
           ('params', 'scalar'): 'scale',  # mmcv's Scale
           ('batch_stats', 'mean'): 'running_mean', ('batch_stats', 'var'): 'running_var'}
_SKIPPED = ('num_batches_tracked',)
_MAX_LISTED = 20


def listing(keys) -> str:
  """The first keys, sorted, and how many more."""
  keys = sorted(keys)
  more = f' ... and {len(keys) - _MAX_LISTED} more' if len(keys) > _MAX_LISTED else ''
  return ', '.join(keys[:_MAX_LISTED]) + more


def unwrap_state_dict(checkpoint: Mapping) -> Dict[str, np.ndarray]:
  """The plain ``{key: array}`` of a checkpoint dict (``state_dict`` / ``meta`` wrapped or not):
  numpy arrays (:func:`jseg.pth.load`'s) or torch tensors."""
  if not isinstance(checkpoint, Mapping):
    raise ValueError(f'expected a state_dict mapping, got {type(checkpoint).__name__}')
  sd = checkpoint.get('state_dict', checkpoint)
  out = {}
  for k, v in sd.items():
    if k.startswith('module.'):  # saved from DistributedDataParallel
      k = k[len('module.'):]
    if not k.endswith(_SKIPPED):
      # Copy: torch and numpy (and jax on CPU) would otherwise share memory.
      out[k] = np.array(v.detach().cpu().numpy() if hasattr(v, 'detach') else v)
  return out


def _shared_copies(sd: Mapping, expected: set) -> set:
  """Keys of ``sd`` that repeat a module shared under two names: MMSeg's
  ``SelfAttentionBlock(share_key_query=True)`` (ANN's APNB) lists ``key_project`` again as
  ``query_project``; jseg holds it once, as ``key_project``. A key counts only where the model
  lacks it, has its ``key_project`` twin, and the values are equal."""
  shared = set()
  for k in set(sd) - expected:
    twin = k.replace('.query_project.', '.key_project.')
    if twin != k and twin in expected and twin in sd and np.array_equal(sd[k], sd[twin]):
      shared.add(k)
  return shared


_SHAPES = collections.OrderedDict()  # the last _SHAPES_KEPT trees: tracing an init takes seconds
_SHAPES_KEPT = 32


def variable_shapes(config, image_size=(64, 64)):
  """Shape/dtype tree of the segmentor's variables (no computation); remembered per config and
  ``image_size``."""
  from jseg.models import build_segmentor
  key = (config.to_json_best_effort(sort_keys=True), tuple(image_size))
  if key not in _SHAPES:
    model = build_segmentor(config)
    _SHAPES[key] = jax.eval_shape(lambda: model.init(jax.random.key(0),
                                                     jnp.zeros((1, *image_size, 3), jnp.float32)))
    while len(_SHAPES) > _SHAPES_KEPT:
      _SHAPES.popitem(last=False)
  return _SHAPES[key]


def mmseg_key(path) -> str:
  """MMSeg state_dict key of a jseg variable path ``(collection, *modules, leaf)``."""
  collection, *modules, leaf = path
  return '.'.join(modules + [_SUFFIX[(collection, leaf)]])


def match_state_dict(sd: Mapping, shapes: Mapping, dtype=jnp.float32, strip: str = ''):
  """Matches the flat jseg variable ``shapes`` ({path: leaf}) with state_dict ``sd``, whose
  keys are MMSeg's without the prefix ``strip`` (e.g. ``'backbone.'`` for a backbone file).

  Returns (values {path: array as ``dtype``}, missing keys, unexpected keys, {path: how a
  wrongly shaped key differs}).
  """
  flat, missing, wrong = {}, [], {}
  for path, leaf in shapes.items():
    key = mmseg_key(path)[len(strip):]
    if key not in sd:
      missing.append(key)
      continue
    value = sd[key]
    if path[-1] == 'kernel':  # OIHW -> HWIO
      value = value.transpose(2, 3, 1, 0)
    elif value.shape == tuple(leaf.shape) + (1,) * (value.ndim - len(leaf.shape)):
      value = value.reshape(leaf.shape)  # LayerNorm([C, 1, 1]) weights (GCNet) -> (C,)
    if value.shape != leaf.shape:
      need = (leaf.shape[3], leaf.shape[2], *leaf.shape[:2]) if path[-1] == 'kernel' else leaf.shape
      wrong[path] = f'{key} has {tuple(sd[key].shape)}, needs {tuple(need)}'
      continue
    flat[path] = jnp.asarray(value, dtype)
  expected = {mmseg_key(p)[len(strip):] for p in shapes}
  unexpected = set(sd) - expected - _shared_copies(sd, expected)
  return flat, missing, sorted(unexpected), wrong


def mmseg_to_jseg(state_dict: Mapping, config, dtype=jnp.float32) -> dict:
  """jseg variables ``{'params', 'batch_stats'}`` of an MMSeg state_dict for ``config``,
  as ``dtype`` (float64 for a float64 run: casting to float32 would round its weights).

  Missing, unexpected or wrongly shaped keys raise ValueError naming them.
  """
  shapes = flax.traverse_util.flatten_dict(flax.core.unfreeze(variable_shapes(config)))
  flat, missing, unexpected, wrong = match_state_dict(unwrap_state_dict(state_dict), shapes, dtype)
  errors = [f'{what} keys: {listing(keys)}' for what, keys in
            (('missing', missing), ('unexpected', unexpected),
             ('wrongly shaped', wrong.values())) if keys]
  if errors:
    raise ValueError(f'state_dict does not fit {config.name}:\n  ' + '\n  '.join(errors))
  return flax.traverse_util.unflatten_dict(flat)


def jseg_to_mmseg(variables) -> Dict[str, np.ndarray]:
  """MMSeg state_dict of jseg variables: names by :func:`mmseg_key`, kernels HWIO -> OIHW
  (other shapes as jseg holds them: GCNet's LayerNorm weights stay (C,))."""
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables))
  return {mmseg_key(path): (np.asarray(v).transpose(3, 2, 0, 1) if path[-1] == 'kernel'
                            else np.asarray(v)) for path, v in flat.items()}


def main(argv):
  del argv
  from absl import logging
  logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO
  from jseg import checkpoints, pth, config as jconfig
  config = jconfig.load(FLAGS.config)
  variables = mmseg_to_jseg(pth.load(FLAGS.checkpoint), config)
  checkpoints.save_variables(FLAGS.out, variables)
  print(f'wrote {FLAGS.out} ({config.name})')


if __name__ == '__main__':
  from absl import app, flags
  flags.DEFINE_string('config', None, 'config spec PATH[:VARIANT]', required=True)
  flags.DEFINE_string('checkpoint', None, 'MMSeg .pth checkpoint', required=True)
  flags.DEFINE_string('out', None, 'output orbax checkpoint directory', required=True)
  FLAGS = flags.FLAGS
  app.run(main)
