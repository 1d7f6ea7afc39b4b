"""Training input rate: jseg's host pipeline against MMSeg's on the same Cityscapes-sized files.

    python benchmarks/data_pipeline.py --markdown=/tmp/data_pipeline.md --json=/tmp/data.json
    python benchmarks/data_pipeline.py --files=4 --reps=2 --batch=2 --loader_batches=3  # quick

Writes ``--files`` synthetic Cityscapes-sized samples (2048x1024 BGR PNG image, smooth colours
plus noise, about 3 MB where a real one is about 2; 2048x1024 PNG label of train ids 0..18 in
blocks, some 255) in a temporary folder, then times the training input of
``configs/pspnet.py:r50-d8_512x1024_80k_cityscapes`` (RandomResize (2048, 1024) ratio 0.5-2.0
keep ratio, RandomCrop 512x1024 cat_max_ratio 0.75, RandomFlip 0.5, PhotoMetricDistortion):

- **per core**: one process, one thread (OpenCV's and torch's thread pools at 1), every file
  once per repetition, jseg's and MMSeg's repetitions alternating, the fastest of ``--reps``
  kept (the least disturbed by other work). Both draw the same scales, crops, flips and
  distortions: per image, jseg's transforms get a ``RandomState`` of the seed that MMSeg's
  global ``np.random.seed`` gets, which replays MMSeg's draws (``jseg.data.transforms``).
  jseg: the data set prepared from the files (``python -m jseg.data.prepare cityscapes``) in
  both storages, 'encoded' (the PNG bytes in array_record, decoded with ``cv2.imdecode``) and
  'raw' (``--storage=raw``: the decoded pixels), each record read (with its label checks) then
  ``train_pipeline(normalize=False)``: what training runs on the host (uint8 out, normalized on
  the device). MMSeg: its own config's ``train_pipeline``
  (LoadImageFromFile, LoadAnnotations, RandomResize, RandomCrop, RandomFlip,
  PhotoMetricDistortion, PackSegInputs) built with mmengine's ``Compose`` as its data set does,
  reading the same PNG files (it too normalizes in its data preprocessor, on the GPU).
- **loader**: ``jseg.data.loader.train_batches`` at batch ``--batch``, per storage, in its
  default 4 threads and in ``--processes`` worker processes (``data.worker_processes``; OpenCV's own threads as
  in training): images per second over the ``--loader_batches`` batches after the first
  (startup excluded), and that rate per core used (workers, at most the machine's cores).
"""
import argparse
import datetime
import importlib.metadata
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'tests')]

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from jseg import config as jconfig  # noqa: E402
from jseg.data import datasets, loader, prepare, transforms  # noqa: E402

METHOD, VARIANT = 'pspnet', 'r50-d8_512x1024_80k_cityscapes'
SIZE = (1024, 2048)  # h, w
THREADS = 4  # train_batches' default, what training uses


def write_files(root: str, n: int, seed: int = 0) -> list:
  """``n`` train samples (and one val) in Cityscapes' layout; their (image, label) paths."""
  rng = np.random.default_rng(seed)
  h, w = SIZE
  paths = []
  for i in range(n + 1):
    split = 'train' if i < n else 'val'
    stem = f'bench/bench_{i:06d}_000019'
    img = cv2.resize(rng.integers(0, 256, (32, 64, 3), dtype=np.uint8), (w, h))
    img = cv2.add(img, rng.integers(0, 4, img.shape, dtype=np.uint8))
    label = cv2.resize(rng.integers(0, 19, (16, 32), dtype=np.uint8), (w, h),
                       interpolation=cv2.INTER_NEAREST)
    label[cv2.resize((rng.random((16, 32)) < 0.1).astype(np.uint8), (w, h),
                     interpolation=cv2.INTER_NEAREST) > 0] = 255
    img_path = os.path.join(root, 'leftImg8bit', split, f'{stem}_leftImg8bit.png')
    label_path = os.path.join(root, 'gtFine', split, f'{stem}_gtFine_labelTrainIds.png')
    for path, array in ((img_path, img), (label_path, label)):
      os.makedirs(os.path.dirname(path), exist_ok=True)
      cv2.imwrite(path, array)
    if split == 'train':
      paths.append((img_path, label_path))
  return paths


def jseg_epoch(config, data_dir: str):
  source = datasets.open_split('cityscapes', 'train', data_dir)
  pipeline = transforms.train_pipeline(config.data, normalize=False)

  def run(rep: int):
    for i in range(len(source)):
      pipeline(source[i], np.random.RandomState(rep * len(source) + i))
  return run


def mmseg_epoch(paths):
  import mmseg_ref as ref  # pylint: disable=import-outside-toplevel  (the mmcv.ops stand-in)
  from mmengine.dataset import Compose  # pylint: disable=import-outside-toplevel
  pipeline = Compose(ref.mmseg_config(METHOD, VARIANT).train_pipeline)

  def run(rep: int):
    for i, (img_path, label_path) in enumerate(paths):
      np.random.seed(rep * len(paths) + i)  # MMSeg's transforms draw from numpy's global state
      pipeline(dict(img_path=img_path, seg_map_path=label_path, reduce_zero_label=False,
                    seg_fields=[], label_map=None))
  return run


def per_core(runs: dict, reps: int, n: int) -> dict:
  """Images per second of each ``runs[name](rep)`` (``n`` images), alternating, fastest rep."""
  import torch  # pylint: disable=import-outside-toplevel
  threads = cv2.getNumThreads(), torch.get_num_threads()
  cv2.setNumThreads(1)
  torch.set_num_threads(1)
  best = {name: float('inf') for name in runs}
  try:
    for rep in range(reps):
      for name, run in runs.items():
        start = time.perf_counter()
        run(rep)
        best[name] = min(best[name], time.perf_counter() - start)
  finally:
    cv2.setNumThreads(threads[0])
    torch.set_num_threads(threads[1])
  return {name: n / t for name, t in best.items()}


def loader_rate(config, data_dir: str, batches: int, threads: int = THREADS,
                processes: int = 0) -> float:
  """Images per second of ``train_batches`` over ``batches`` batches after its first."""
  config.data.worker_processes = processes
  it = loader.train_batches(config, data_dir=data_dir, num_threads=threads)
  try:
    next(it)
    start = time.perf_counter()
    for _ in range(batches):
      next(it)
    return batches * config.train.batch_size / (time.perf_counter() - start)
  finally:
    it.close()


STORAGE_ROWS = {'encoded': 'record read + PNG decode + transforms',
                'raw': 'raw storage: record read + transforms'}


def markdown(result: dict) -> str:
  cores = result['cores']
  rows = [(f'jseg train pipeline ({STORAGE_ROWS[storage]})', '1 thread', rate, 1)
          for storage, rate in result['jseg_per_core'].items()]
  rows.append(('MMSeg train pipeline (LoadImageFromFile ... PackSegInputs)', '1 thread',
               result['mmseg_per_core'], 1))
  for row in result['loader']:
    used = min(row['workers'], cores)
    rows.append((f'jseg loader (train_batches, batch {result["batch"]}, {row["storage"]})',
                 f'{row["workers"]} {row["kind"]}', row['img_per_s'], used))
  lines = [f'Measured {result["date"]} by `python benchmarks/data_pipeline.py` '
           f'(--files={result["files"]} --reps={result["reps"]} --batch={result["batch"]} '
           f'--loader_batches={result["loader_batches"]} --processes={result["processes"]}).', '',
           f'- Machine: {result["cpu"]}, {cores} cores; 1-min load average '
           f'{result["load"][0]:.2f} at the start, {result["load"][1]:.2f} at the end',
           f'- {result["files"]} synthetic 2048x1024 PNG pairs ({result["png_mb"]:.1f} MB per '
           f'image); {result["config"]}; opencv {cv2.__version__}, mmsegmentation '
           f'{result["mmseg"]}',
           '- Record size per sample (image + label): ' + ', '.join(
               f'{storage} {mb:.1f} MB' for storage, mb in result['record_mb'].items()), '',
           '| pipeline | workers | img/s | img/s per core | ms/img per core |',
           '|---|---|---:|---:|---:|']
  for name, workers, rate, used in rows:
    lines.append(f'| {name} | {workers} | {rate:.2f} | {rate / used:.2f} | '
                 f'{1e3 * used / rate:.0f} |')
  lines.append('')
  for storage, rate in result['jseg_per_core'].items():
    lines.append(f'- jseg ({storage} storage) / MMSeg images per second per core: '
                 f'**{rate / result["mmseg_per_core"]:.2f}**')
  return '\n'.join(lines) + '\n'


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--files', type=int, default=8, help='synthetic samples to write')
  parser.add_argument('--reps', type=int, default=5, help='per-core repetitions (fastest kept)')
  parser.add_argument('--batch', type=int, default=8, help="loader batch (the config's: 8)")
  parser.add_argument('--loader_batches', type=int, default=6, help='loader batches timed')
  parser.add_argument('--processes', type=int, default=os.cpu_count(),
                      help='loader worker processes (data.worker_processes)')
  parser.add_argument('--json')
  parser.add_argument('--markdown')
  args = parser.parse_args()
  import compare_mmseg  # pylint: disable=import-outside-toplevel  (benchmarks/: cpu_model)
  config = jconfig.load(f'configs/{METHOD}.py:{VARIANT}')
  config.train.batch_size = args.batch
  load = [os.getloadavg()[0]]
  with tempfile.TemporaryDirectory(prefix='jseg-data-bench-') as tmp:
    paths = write_files(os.path.join(tmp, 'files'), args.files)
    data_dirs = {storage: os.path.join(tmp, storage) for storage in STORAGE_ROWS}
    for storage, data_dir in data_dirs.items():
      prepare.prepare('cityscapes', source=os.path.join(tmp, 'files'), data_dir=data_dir,
                      storage=storage)
    rates = per_core({**{storage: jseg_epoch(config, data_dir)
                         for storage, data_dir in data_dirs.items()},
                      'mmseg': mmseg_epoch(paths)}, args.reps, args.files)
    rows = [dict(storage=storage, kind=kind, workers=workers,
                 img_per_s=loader_rate(config, data_dir, args.loader_batches,
                                       processes=workers if kind == 'processes' else 0))
            for storage, data_dir in data_dirs.items()
            for kind, workers in (('threads', THREADS), ('processes', args.processes))]
    png_mb = np.mean([os.path.getsize(p) for p, _ in paths]) / 1e6
    record_mb = {storage: sum(os.path.getsize(os.path.join(root, f))
                              for root, _, files in os.walk(data_dir) for f in files
                              if '.array_record' in f) / 1e6 / (args.files + 1)
                 for storage, data_dir in data_dirs.items()}
  load.append(os.getloadavg()[0])
  result = dict(date=datetime.date.today().isoformat(), cpu=compare_mmseg.cpu_model(),
                cores=os.cpu_count(), load=load, files=args.files, reps=args.reps,
                batch=args.batch, loader_batches=args.loader_batches, processes=args.processes,
                png_mb=png_mb, record_mb=record_mb, config=f'{METHOD}_{VARIANT}',
                mmseg=importlib.metadata.version('mmsegmentation'),
                jseg_per_core={storage: rates[storage] for storage in STORAGE_ROWS},
                mmseg_per_core=rates['mmseg'], loader=rows)
  table = markdown(result)
  print(table)
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(result, f, indent=2)
  if args.markdown:
    with open(args.markdown, 'w') as f:
      f.write(table)


if __name__ == '__main__':
  main()
