"""Data-set metrics of a model on a split, for the training loop and ``--mode=eval``.

Every process evaluates its share of the split of the test data set (``data.test_dataset``, at
``data.test_img_scale``: ``loader.eval_samples``) on all of its local devices: images of one
size go through as one batch sharded across the devices (each image's rows over
``mesh.spatial`` of them: :mod:`jseg.mesh`), so a size compiles once (said in the log) and runs
``local_device_count / mesh.spatial`` images per call. Per image,
the prediction's confusion matrix is taken on the device; the host sums them in int64, and
the processes sum theirs at the end. Images wait, at most ``MAX_PENDING_PER_DEVICE`` per
device, for others of their size; a batch that cannot be filled is padded and the padding
not counted.
"""
import functools
import time
from typing import Callable, Dict, List, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec as P

from jseg import metrics as jmetrics
from jseg.data import loader
from jseg.inference import make_predict_fn, output_align_corners
from jseg.mesh import make_mesh

# Images held back at most, per device, while waiting for more of the same size.
MAX_PENDING_PER_DEVICE = 4


def make_confusion_fn(model, config, mesh=None):
  """``confusion(variables, images, labels, valid)`` -> (C, C) counts summed over the images
  with ``valid``, jitted: prediction (``config.test``, on ``mesh``) at the labels' size, argmax,
  confusion."""
  predict = make_predict_fn(model, config.test, output_align_corners(config), mesh)
  num_classes, ignore_index = config.data.num_classes, config.data.ignore_index

  @jax.jit
  def confusion(variables, images, labels, valid):
    logits = predict(variables, images, labels.shape[1:])
    per_image = jax.vmap(lambda p, y: jmetrics.confusion_matrix(p, y, num_classes, ignore_index))(
        jnp.argmax(logits, -1), labels)
    return jnp.einsum('n,nij->ij', valid.astype(jnp.int32), per_image)

  return confusion


class Evaluator:
  """``Evaluator(config, model)(variables, split)`` -> :func:`jseg.metrics.summarize` of
  ``variables`` on ``split`` of ``config.data.test_dataset``. One jitted step serves every
  call, so each distinct input / label size compiles once per run; ``log`` gets those compiles
  and the rate (images / s)."""

  def __init__(self, config, model, log: Optional[Callable[[str], None]] = None):
    self.config, self.log = config, log or (lambda _: None)
    self.mesh = make_mesh(jax.local_devices(), config.get('mesh', {}).get('spatial', 1))
    self.confusion = make_confusion_fn(model, config, self.mesh)
    self.compiled = set()

  def __call__(self, variables, split: str = 'val', progress: bool = True) -> Dict[str, object]:
    n = self.mesh.shape['data']  # images per call; each image's rows over 'spatial'
    batch = NamedSharding(self.mesh, P('data'))
    variables = jax.device_put(jax.device_get(variables), NamedSharding(self.mesh, P()))
    num_classes = self.config.data.num_classes
    hist = np.zeros((num_classes, num_classes), np.int64)
    pending: Dict[Tuple, List] = {}
    count, compiled_before, start = 0, len(self.compiled), time.perf_counter()

    def run(key: Tuple, samples: List) -> None:
      nonlocal hist
      valid = np.arange(n) < len(samples)
      samples = samples + [samples[-1]] * (n - len(samples))  # one per 'data' group
      images = np.concatenate([image for image, _ in samples])
      labels = np.stack([label for _, label in samples])
      if key not in self.compiled:
        self.compiled.add(key)
        self.log(f'eval {split}: compiling for input {key[0][1]}x{key[0][2]}, labels '
                 f'{key[1][0]}x{key[1][1]} ({len(self.compiled)} sizes so far)')
      put = functools.partial(jax.device_put, device=batch)
      hist += np.asarray(self.confusion(variables, put(images), put(labels), put(valid)),
                         np.int64)

    for image, label in loader.eval_samples(self.config, split, progress=progress):
      key = (image.shape, label.shape)
      pending.setdefault(key, []).append((image, label))
      count += 1
      if len(pending[key]) == n:
        run(key, pending.pop(key))
      elif sum(map(len, pending.values())) > MAX_PENDING_PER_DEVICE * n:
        oldest = next(iter(pending))
        run(oldest, pending.pop(oldest))
    for key, samples in pending.items():
      run(key, samples)
    seconds = time.perf_counter() - start
    compiles = len(self.compiled) - compiled_before
    self.log(f'eval {split}: {count} images in {seconds:.1f} s, '
             f'{count / max(seconds, 1e-9):.2f} img/s on {self.mesh.size} device(s)'
             + (f' ({compiles} compile(s) included)' if compiles else ''))
    if jax.process_count() > 1:
      hist = np.asarray(multihost_utils.process_allgather(hist)).sum(0)
    return jmetrics.summarize(hist)
