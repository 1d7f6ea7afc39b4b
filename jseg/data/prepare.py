"""Prepares a data set: ``python -m jseg.data.prepare NAME [--source=DIR] [--out=DATA_DIR]``.

    python -m jseg.data.prepare synthetic
    python -m jseg.data.prepare cityscapes --source=/path/to/cityscapes
    python -m jseg.data.prepare ade20k --source=/path/to/ADEChallengeData2016
    python -m jseg.data.prepare voc12aug --source=/path/to/VOCdevkit/VOC2012
    python -m jseg.data.prepare folder --source=/path/to/my_data --name=my_data
    python -m jseg.data.prepare cityscapes --source=/path/to/cityscapes --storage=raw

Reads the user's files (never downloads), checks every sample, and writes the data set in
array_record format to ``DATA_DIR/NAME/1.0.0`` (``--out``, else ``$JSEG_DATA``, else
``~/jseg_data``), atomically: on any error nothing is left behind. ``--storage=raw`` stores the
decoded pixels instead of the files' encoding: no decode when training reads them (a 2048x1024
PNG takes ~60 ms of one core), ~2-3x the disk. See docs/data.md.
"""
import argparse
import importlib
import os
import sys
from typing import Optional

from jseg.data import builder, datasets
from jseg.data.sources import DataError, SourceTree


def prepare(name: str, source: Optional[str] = None, data_dir: Optional[str] = None,
            overwrite: bool = False, dataset_name: Optional[str] = None,
            storage: str = 'encoded', **options) -> str:
  """Builds data set ``name`` from ``source``; returns the folder written.

  ``storage``: 'encoded' (the image files' bytes, labels as PNG) or 'raw' (decoded, as .npy).
  ``dataset_name``: the name to store a ``folder`` data set under (default 'folder').
  ``options`` go to the data set module's ``splits`` (e.g. ``val_fraction`` for folder,
  ``num_samples`` / ``size`` for synthetic).
  """
  if name not in datasets.BUILDERS:
    raise DataError(f'unknown data set {name!r}; known: {", ".join(datasets.BUILDERS)}')
  module = importlib.import_module(datasets.BUILDERS[name][0])
  if name == 'synthetic':
    if source is not None:
      raise DataError('synthetic is generated: it takes no --source')
  elif source is None:
    raise DataError(f'{name} needs --source, e.g. {datasets.prepare_command(name)}')
  if dataset_name and name != 'folder':
    raise DataError('--name is for folder data sets only')
  if dataset_name in set(datasets.BUILDERS) - {'folder'}:
    raise DataError(f'--name={dataset_name} is a built-in data set; choose another name')
  data_dir = data_dir or datasets.default_data_dir()
  stored_as = dataset_name or name
  if os.path.exists(builder.dataset_dir(os.path.expanduser(data_dir), stored_as)) and not overwrite:
    raise DataError(f'{stored_as} is already prepared in {data_dir}; pass --overwrite to '
                    'rebuild it')
  splits = module.splits(source, **options) if source is not None else module.splits(**options)
  if name == 'folder':
    classes, palette = module.read_classes(SourceTree(source))
    info = datasets.DatasetInfo(dataset_name or 'folder', classes, palette)
  else:
    info = datasets.dataset_info(name)
  metadata = dict(builder=name, classes=list(info.classes),
                  palette=[list(p) for p in info.palette],
                  reduce_zero_label=info.reduce_zero_label,
                  source=os.path.abspath(source) if source else None)
  print(f'{info.name}: ' + ', '.join(f'{len(v)} {k}' for k, v in splits.items())
        + f' samples, {info.num_classes} classes', flush=True)
  return builder.write(info.name, splits, info.num_labels, metadata, data_dir,
                       overwrite=overwrite, storage=storage)


def main(argv=None):
  parser = argparse.ArgumentParser(
      prog='python -m jseg.data.prepare', description=__doc__.split('\n')[0],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('dataset', choices=sorted(datasets.BUILDERS))
  parser.add_argument('--source', help='folder with the data set\'s files (or their zips)')
  parser.add_argument('--out', help='data dir (default: $JSEG_DATA or ~/jseg_data)')
  parser.add_argument('--overwrite', action='store_true', help='replace a prepared copy')
  parser.add_argument('--name', help='folder only: name to store the data set under')
  parser.add_argument('--storage', choices=builder.STORAGES, default='encoded',
                      help="encoded: the image files' bytes, labels as PNG (default); raw: "
                           'decoded pixels, no decode at training time, ~2-3x the disk')
  parser.add_argument('--val_fraction', type=float, default=None,
                      help='folder without split folders: share of images for val (0.1)')
  args = parser.parse_args(argv)
  options = {}
  if args.val_fraction is not None:
    if args.dataset != 'folder':
      parser.error('--val_fraction is for folder data sets only')
    options['val_fraction'] = args.val_fraction
  try:
    path = prepare(args.dataset, args.source, args.out, args.overwrite, args.name,
                   args.storage, **options)
  except DataError as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  print(f'prepared {path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
