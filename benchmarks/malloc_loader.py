"""The glibc malloc tunables (``jseg.malloc_tunables``) on the training input pipeline's threads:
``jseg.data.loader.train_batches`` with glibc's defaults and with the tunables (one arena shared
by every thread), alternating, on the same Cityscapes-sized files as benchmarks/data_pipeline.py.

    python benchmarks/malloc_loader.py [--files=8 --batch=8 --batches=6 --reps=3]

Each measurement is a fresh process (glibc reads its tunables at start): images per second of the
loader over ``--batches`` batches after its first, in its default threads and in worker
processes (``data.worker_processes``: each worker its own process, so its own arena), the fastest
of ``--reps``.
"""
import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import data_pipeline  # noqa: E402
from jseg import malloc_tunables  # noqa: E402
from jseg.data import prepare  # noqa: E402

CHILD = """
import sys
sys.path[:0] = {path!r}
import data_pipeline
from jseg import config as jconfig
config = jconfig.load(f'configs/{{data_pipeline.METHOD}}.py:{{data_pipeline.VARIANT}}')
config.train.batch_size = {batch}
print(data_pipeline.loader_rate(config, {data_dir!r}, {batches}, processes={processes}))
"""


def rate(data_dir: str, tunables: bool, processes: int, batch: int, batches: int) -> float:
  env = {k: v for k, v in os.environ.items() if k != 'GLIBC_TUNABLES'}
  if tunables:
    env['GLIBC_TUNABLES'] = ':'.join(f'{k}={v}' for k, v in malloc_tunables.TUNABLES.items())
  code = CHILD.format(path=[os.path.dirname(HERE), HERE], data_dir=data_dir, batch=batch, batches=batches,
                      processes=processes)
  done = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                        check=True, cwd=os.path.dirname(HERE))
  return float(done.stdout.split()[-1])


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--files', type=int, default=8)
  parser.add_argument('--batch', type=int, default=8)
  parser.add_argument('--batches', type=int, default=6)
  parser.add_argument('--reps', type=int, default=3)
  parser.add_argument('--processes', type=int, default=os.cpu_count())
  args = parser.parse_args()
  load = [os.getloadavg()[0]]
  best = {}
  with tempfile.TemporaryDirectory(prefix='jseg-malloc-loader-') as tmp:
    data_pipeline.write_files(os.path.join(tmp, 'files'), args.files)
    data_dir = os.path.join(tmp, 'encoded')
    prepare.prepare('cityscapes', source=os.path.join(tmp, 'files'), data_dir=data_dir)
    for _ in range(args.reps):
      for workers in (0, args.processes):
        for tunables in (False, True):
          r = rate(data_dir, tunables, workers, args.batch, args.batches)
          best[workers, tunables] = max(best.get((workers, tunables), 0.0), r)
  load.append(os.getloadavg()[0])
  print(f'{os.cpu_count()} cores, load {load[0]:.1f} -> {load[1]:.1f}; batch {args.batch}, '
        f'{args.batches} batches timed, fastest of {args.reps}')
  print('| loader | glibc defaults | tunables | ratio |\n|---|---|---|---|')
  for workers in (0, args.processes):
    kind = (f'{data_pipeline.THREADS} threads' if workers == 0 else
            f'{workers} worker processes')
    a, b = best[workers, False], best[workers, True]
    print(f'| {kind} | {a:.2f} img/s | {b:.2f} img/s | {b / a:.2f} |')


if __name__ == '__main__':
  main()
