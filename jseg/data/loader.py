"""Batches for training and samples for evaluation, a pure function of the step.

The training order is fixed by (seed, step): global sample ``g = step * batch + k`` is
record ``permutation(seed, epoch)[g % N]`` of epoch ``g // N``, augmented with
``np.random.default_rng((seed, epoch, g % N))``. So a run is reproducible, a restart
at step ``s`` continues exactly where it stopped, and each process reads only its
contiguous share of every global batch. Batches leave the host as uint8, before
``Normalize`` (4x fewer bytes than float32): the train step normalizes them on the device
(:func:`jseg.train.normalize_images`). grain runs the pipelines ahead of the train step in
threads, or in ``data.worker_processes`` processes (the same batches in the same order; a script
that uses them needs the ``if __name__ == '__main__':`` guard, as they are spawned); a bad
record's DataError (naming the data set, split, record index and sample, see
``datasets.SegmentationSource``) is raised, unchanged, by the ``next()`` of its batch.
"""
import functools
from typing import Iterator, Optional, Tuple

from absl import flags
import grain
import jax
import numpy as np
from tqdm import tqdm

from jseg.data import datasets, transforms

_PROFILING_FLAG = 'grain_enable_multiprocess_worker_profiling'


@functools.lru_cache(maxsize=8)
def _permutation(seed: int, epoch: int, n: int) -> np.ndarray:
  return np.random.default_rng((seed, epoch)).permutation(n)


def local_batch(source, pipeline, seed: int, step: int, batch_size: int,
                process_index: int = 0, process_count: int = 1
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """This process's part of global batch ``step``: images (b, h, w, 3) as ``pipeline`` makes
  them, labels (b, h, w) u8 and sizes (b, 2) i32, each image's (h, w) before its Pad."""
  n = len(source)
  per_process = batch_size // process_count
  images, labels, sizes = [], [], []
  for k in range(process_index * per_process, (process_index + 1) * per_process):
    g = step * batch_size + k
    epoch, pos = divmod(g, n)
    record = source[int(_permutation(seed, epoch, n)[pos])]
    out = pipeline(record, np.random.default_rng((seed, epoch, pos)))
    images.append(out['img'])
    labels.append(out['gt_seg_map'])
    sizes.append(out['img_shape'])
  return np.stack(images), np.stack(labels), np.asarray(sizes, np.int32)


def train_batches(config, start_step: int = 0, data_dir: Optional[str] = None, num_threads: int = 4
                  ) -> Iterator[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
  """This process's ``(images, labels, sizes)`` (:func:`local_batch`) of every global batch from
  ``start_step`` on, images uint8 BGR padded with 0: ``train_pipeline(normalize=False)``. The
  pipelines run in ``num_threads`` threads, or in ``config.data.worker_processes`` processes."""
  source = datasets.open_split(config.data.dataset, 'train', data_dir)
  batch_size, workers = config.train.batch_size, config.data.worker_processes
  if batch_size % jax.process_count():
    raise ValueError(f'train.batch_size={batch_size} is not divisible by the '
                     f'{jax.process_count()} processes')
  if workers < 0:
    raise ValueError(f'data.worker_processes={workers}: expected 0 (threads) or a number of '
                     'processes')
  pipeline = transforms.train_pipeline(config.data, normalize=False)
  make = functools.partial(local_batch, source, pipeline, config.seed, batch_size=batch_size,
                           process_index=jax.process_index(), process_count=jax.process_count())
  ds = grain.MapDataset.range(start_step, config.train.iterations).map(make)
  if not workers:
    return iter(ds.to_iter_dataset(grain.ReadOptions(num_threads=num_threads,
                                                     prefetch_buffer_size=2 * num_threads)))
  # Each process makes every workers-th batch; grain interleaves them back into step order.
  ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0))
  if _PROFILING_FLAG in flags.FLAGS and not flags.FLAGS.is_parsed():
    # grain 0.2.18 reads this flag even where absl never parsed the flags (google/grain#1355):
    # its default, as grain itself does for its debug flags.
    flags.FLAGS[_PROFILING_FLAG].present = True
  return iter(ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers,
                                                          per_worker_buffer_size=2)))


def eval_samples(config, split: str = 'val', data_dir: Optional[str] = None,
                 progress: bool = True, with_image: bool = False):
  """This process's share of ``split`` of the test data set (``data.test_dataset``):
  ``(inputs (1, h, w, 3) f32, label (H, W) u8[, RGB image])``.

  ``inputs`` went through the test pipeline (resize to ``test_img_scale``, normalize);
  ``label`` is at the original size, after ``reduce_zero_label``.
  """
  source = datasets.open_split(config.data.test_dataset, split, data_dir)
  pipeline = transforms.test_pipeline(config.data)
  indices = range(jax.process_index(), len(source), jax.process_count())
  for i in tqdm(indices, desc=f'eval {split}', disable=not progress, leave=False):
    record = source[i]
    out = pipeline(record)
    sample = (out['img'][None], out['gt_seg_map'])
    yield sample + (record['img'][..., ::-1],) if with_image else sample
