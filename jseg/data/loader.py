"""Batches for training and samples for evaluation, a pure function of the step.

The training order is fixed by (seed, step): global sample ``g = step * batch + k`` is
record ``permutation(seed, epoch)[g % N]`` of epoch ``g // N``, augmented with
``np.random.default_rng((seed, epoch, g % N))``. So a run is reproducible, a restart
at step ``s`` continues exactly where it stopped, and each process reads only its
contiguous share of every global batch. grain runs the pipelines in threads ahead of
the train step; a bad record's DataError (naming the data set, split, record index and sample,
see ``datasets.SegmentationSource``) is raised, unchanged, by the ``next()`` of its batch.
"""
import functools
from typing import Iterator, Optional, Tuple

import grain
import jax
import numpy as np
from tqdm import tqdm

from jseg.data import datasets, transforms


@functools.lru_cache(maxsize=8)
def _permutation(seed: int, epoch: int, n: int) -> np.ndarray:
  return np.random.default_rng((seed, epoch)).permutation(n)


def local_batch(source, pipeline, seed: int, step: int, batch_size: int,
                process_index: int = 0, process_count: int = 1) -> Tuple[np.ndarray, np.ndarray]:
  """This process's part of global batch ``step``: images (b, h, w, 3) f32, labels (b, h, w) i32."""
  n = len(source)
  per_process = batch_size // process_count
  images, labels = [], []
  for k in range(process_index * per_process, (process_index + 1) * per_process):
    g = step * batch_size + k
    epoch, pos = divmod(g, n)
    record = source[int(_permutation(seed, epoch, n)[pos])]
    out = pipeline(record, np.random.default_rng((seed, epoch, pos)))
    images.append(out['img'])
    labels.append(out['gt_seg_map'])
  return np.stack(images), np.stack(labels).astype(np.int32)


def train_batches(config, start_step: int = 0, data_dir: Optional[str] = None,
                  num_threads: int = 4) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
  """This process's ``(images, labels)`` of every global batch from ``start_step`` on."""
  source = datasets.open_split(config.data.dataset, 'train', data_dir)
  batch_size = config.train.batch_size
  if batch_size % jax.process_count():
    raise ValueError(f'train.batch_size={batch_size} is not divisible by the '
                     f'{jax.process_count()} processes')
  make = functools.partial(local_batch, source, transforms.train_pipeline(config.data),
                           config.seed, batch_size=batch_size,
                           process_index=jax.process_index(), process_count=jax.process_count())
  ds = grain.MapDataset.range(start_step, config.train.iterations).map(make)
  return iter(ds.to_iter_dataset(grain.ReadOptions(num_threads=num_threads,
                                                   prefetch_buffer_size=2 * num_threads)))


def eval_samples(config, split: str = 'val', data_dir: Optional[str] = None,
                 progress: bool = True, with_image: bool = False):
  """This process's share of ``split``: ``(inputs (1, h, w, 3) f32, label (H, W) u8[, RGB image])``.

  ``inputs`` went through the test pipeline (resize to ``img_scale``, normalize);
  ``label`` is at the original size, after ``reduce_zero_label``.
  """
  source = datasets.open_split(config.data.dataset, split, data_dir)
  pipeline = transforms.test_pipeline(config.data)
  indices = range(jax.process_index(), len(source), jax.process_count())
  for i in tqdm(indices, desc=f'eval {split}', disable=not progress, leave=False):
    record = source[i]
    out = pipeline(record)
    sample = (out['img'][None], out['gt_seg_map'])
    yield sample + (record['img'][..., ::-1],) if with_image else sample
