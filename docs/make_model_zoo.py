"""Writes docs/model_zoo.md: every config variant with MMSeg's published mIoU and weights.

    python docs/make_model_zoo.py            # rewrites docs/model_zoo.md
    python docs/make_model_zoo.py --check    # exit 1 if docs/model_zoo.md is out of date

The numbers come from MMSegmentation's ``configs/*/metafile.yaml`` (the installed mmseg
package's ``.mim/configs``, or ``--mmseg_configs=DIR``, e.g. an MMSeg checkout's ``configs``),
matched by the weights' name; the metafiles also say which rows are published. The weights'
links come from jseg's own table (the config files' ``WEIGHTS``, :func:`jseg.zoo.url`: what
``--checkpoint=zoo`` downloads), which must name the same file as the metafile. Reads the config
files only: no model is built and mmseg is not imported. ``tests/test_docs.py`` keeps the page
up to date.
"""
import argparse
import functools
import glob
import importlib.util
import os
import re
import sys
from typing import Dict, List, Optional, Tuple

import yaml

from jseg import config as jconfig

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
OUT = os.path.join(ROOT, 'docs', 'model_zoo.md')

# jseg config file -> title; the page lists methods in this order (any other file after them).
TITLES = {
    'fcn': 'FCN', 'pspnet': 'PSPNet', 'psanet': 'PSANet', 'deeplabv3': 'DeepLabV3',
    'deeplabv3plus': 'DeepLabV3+', 'upernet': 'UPerNet', 'hrnet': 'HRNetV2 (FCN head)',
    'gcnet': 'GCNet', 'nonlocal_net': 'NonLocal', 'ccnet': 'CCNet', 'danet': 'DANet',
    'ann': 'ANN', 'ocrnet': 'OCRNet',
}
DATASET_NAMES = {
    'cityscapes': 'Cityscapes', 'ade20k': 'ADE20K', 'voc12aug': 'VOC 2012 aug',
    'pascal_context': 'Pascal Context', 'pascal_context_59': 'Pascal Context 59',
    'coco-stuff10k': 'COCO-Stuff 10k', 'coco-stuff164k': 'COCO-Stuff 164k', 'loveda': 'LoveDA',
    'potsdam': 'Potsdam', 'vaihingen': 'Vaihingen', 'isaid': 'iSAID',
    'mapillary_v1_65': 'Mapillary Vistas v1.2 (65)', 'dark': 'Cityscapes → Dark Zurich',
    'night_driving': 'Cityscapes → Nighttime Driving',
}
# Evaluation-only rows: a Cityscapes model's config tested on another set.
EVAL_ONLY = ('dark', 'night_driving')


def default_mmseg_configs() -> Optional[str]:
  """The installed mmseg package's ``.mim/configs`` (found without importing mmseg)."""
  spec = importlib.util.find_spec('mmseg')
  if spec is None or not spec.submodule_search_locations:
    return None
  path = os.path.join(list(spec.submodule_search_locations)[0], '.mim', 'configs')
  return path if os.path.isdir(path) else None


def config_variants() -> Dict[str, List[str]]:
  """``{method: VARIANTS}`` of every ``configs/*.py``, in TITLES' order."""
  if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # the config files import jseg.config
  found = {}
  for path in sorted(glob.glob(os.path.join(ROOT, 'configs', '*.py'))):
    method = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(f'jseg_zoo_config_{method}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found[method] = list(module.VARIANTS)
  order = [m for m in TITLES if m in found] + sorted(set(found) - set(TITLES))
  return {m: found[m] for m in order}


_WEIGHTS_SUFFIX = re.compile(r'_\d{8}_\d{6}(-[0-9a-f]+)?\.pth$')


def weights_stem(url: str) -> str:
  """The config name a weights file was trained with: its name less ``_DATE_TIME-HASH.pth``."""
  return _WEIGHTS_SUFFIX.sub('', os.path.basename(url))


@functools.lru_cache(maxsize=4)
def published(mmseg_configs: str, folders: Tuple[str, ...]) -> Dict[str, dict]:
  """The entries (with weights) of ``folders``' metafiles, by the stem of the weights' name."""
  entries = {}
  for folder in folders:
    path = os.path.join(mmseg_configs, folder, 'metafile.yaml')
    if not os.path.isfile(path):
      continue
    with open(path) as f:
      for model in yaml.load(f, Loader=getattr(yaml, 'CSafeLoader', yaml.SafeLoader)).get(
          'Models', []):
        if model.get('Weights'):
          entries.setdefault(weights_stem(model['Weights']), model)
  return entries


def lookup(method: str, variant: str, mm_config: str, entries: Dict[str, dict]):
  """(metafile entry or None, the config the metafile files it under) of a variant.

  Matched by the weights' name, which is the v0.x config name (or, for newer checkpoints, the
  1.x one), not by the entry's ``Config``: MMSeg 1.2.2's metafile files a few results under
  another schedule's config (OCRNet HRNet ADE20K 160k under the 80k config, DeepLabV3+ R-101
  ADE20K 80k under the 160k one).
  """
  prefix = jconfig.MMSEG_NAMES.get(method, (method, method))[1]
  # v0.x's fp16 checkpoints name it after the backbone: fcn_r101-d8_fp16_512x1024_80k_cityscapes
  fp16 = re.sub(r'^([^_]+)_(.*)_fp16_', r'\1_fp16_\2_', variant)
  for stem in (f'{prefix}_{variant}', f'{prefix}_{fp16}', os.path.basename(mm_config)[:-3]):
    if stem in entries:
      return entries[stem], '/'.join(entries[stem]['Config'].split('/')[-2:])
  return None, None


def _metric(metrics: dict, key: str) -> str:
  value = metrics.get(key)
  return '—' if value is None else f'{float(value):.2f}'


def jseg_weights(method: str, variant: str, metafile_url: str) -> str:
  """jseg's URL of a variant's published weights (:func:`jseg.zoo.url`), which must be the file
  the metafile names (the host may differ: MMSeg 1.2.2's pspnet metafile misspells it once)."""
  from jseg import zoo as jzoo  # jseg's table, not the metafile's
  try:
    url = jzoo.url(method, variant)
  except ValueError as e:
    raise SystemExit(f'error: MMSeg publishes {metafile_url} for configs/{method}.py:{variant}, '
                     f'which its WEIGHTS lacks ({e})') from e
  if os.path.basename(url) != os.path.basename(metafile_url):
    raise SystemExit(f'error: configs/{method}.py:{variant}: WEIGHTS gives {url}, MMSeg\'s '
                     f'metafile {metafile_url}')
  return url


def rows(mmseg_configs: str) -> List[dict]:
  """One row per (non-synthetic) config variant."""
  variants_of = config_variants()
  folders = tuple(jconfig.MMSEG_NAMES.get(m, (m, m))[0] for m in variants_of)
  entries = published(mmseg_configs, folders)
  out = []
  for method, variants in variants_of.items():
    for variant in variants:
      v = jconfig.split_variant(variant)
      if v.dataset in jconfig.JSEG_DATASETS:  # jseg's own: not in MMSeg's zoo
        continue
      mm_config = jconfig.mmseg_config_name(method, variant)
      if not os.path.isfile(os.path.join(mmseg_configs, mm_config)):
        raise SystemExit(f'error: configs/{method}.py:{variant} maps to MMSeg config '
                         f'{mm_config}, which does not exist in {mmseg_configs}')
      entry, filed_under = lookup(method, variant, mm_config, entries)
      # The name's parts besides crop, schedule and data set: with the backbone (d6_r50-d16,
      # r50-d8_rsb-pretrain), or beside the crop (b16, fp16, adamw).
      backbone = '_'.join(p for p in (v.head, v.backbone, v.pretrain) if p)
      tags = [p for p in (f'b{v.batch}' if v.batch else None, 'fp16' if v.fp16 else None,
                          v.optimizer) if p]
      row = dict(method=method, variant=variant, backbone=backbone, crop=v.crop,
                 schedule=v.schedule, dataset=v.dataset, mmseg_config=mm_config,
                 batch=', '.join(tags) or None, miou=None, miou_ms=None,
                 weights=None,
                 filed_under=filed_under if filed_under != mm_config else None)
      if entry is not None:
        metrics = entry['Results']['Metrics']
        row.update(miou=_metric(metrics, 'mIoU'), miou_ms=_metric(metrics, 'mIoU(ms+flip)'),
                   weights=jseg_weights(method, variant, entry['Weights']))
      out.append(row)
  return out


def import_command(row: dict) -> str:
  pth = os.path.basename(row['weights'])
  name = f'{row["method"]}_{row["variant"]}'
  return (f'python -m jseg.convert --config=configs/{row["method"]}.py:{row["variant"]} '
          f'--checkpoint={pth} --out={name}')


def render(mmseg_configs: str) -> str:
  table = rows(mmseg_configs)
  n_pub = sum(r['weights'] is not None for r in table)
  lines = [
      '# Model zoo',
      '',
      '<!-- Generated by docs/make_model_zoo.py from MMSegmentation 1.2.2\'s metafile.yaml '
      'files: do not edit; run `python docs/make_model_zoo.py`. -->',
      '',
      f'Every jseg config variant of MMSegmentation\'s zoo ({len(table)} variants, {n_pub} with '
      'published weights), with the mIoU that MMSeg publishes for its checkpoint (single-scale '
      'and multi-scale + flip, on the val split). A published checkpoint loads by its config '
      'alone: `--checkpoint=zoo` on the command line, `apis.init_segmentor(SPEC, \'zoo\')` in '
      'Python. It is downloaded on first use into `$JSEG_CACHE` (default `~/.cache/jseg`; '
      'progress bar, sha256 check) and read without torch at each load. The loaded '
      'model gives MMSeg\'s logits in jseg (tested to MMSeg\'s own float32 accuracy, about 1e-6 '
      'relative), so `--mode=eval --checkpoint=zoo` reproduces these numbers on the prepared '
      'data set (see [getting_started.md](getting_started.md)).',
      '',
      '```bash',
      'python -m jseg.main --config=configs/pspnet.py:r50-d8_512x1024_80k_cityscapes '
      '--mode=predict --checkpoint=zoo --image=street.png --out=street_seg.png',
      '```',
      '',
      '```python',
      'from jseg import apis',
      "seg = apis.init_segmentor('configs/pspnet.py:r50-d8_512x1024_80k_cityscapes', 'zoo')",
      "label_map = apis.inference_segmentor(seg, 'street.png')",
      '```',
      '',
      'Another config\'s weights: `zoo:NAME`, NAME being the jseg config name `METHOD_VARIANT`, '
      'MMSeg v0.x\'s config name (`nonlocal_r50-d8_512x1024_40k_cityscapes` as well as '
      '`nonlocal_net_...`) or the MMSeg 1.x config name of the tables, e.g. '
      '`--init_from=zoo:pspnet_r50-d8_4xb2-80k_cityscapes-512x1024` to fine-tune the '
      'Cityscapes PSPNet on your data.',
      '',
      '- **jseg config**: `configs/METHOD.py:BACKBONE_CROP_SCHEDULE_DATASET`, MMSeg v0.x\'s '
      'config name without the method prefix; the MMSeg 1.x config is the one of the same '
      'name in MMSeg\'s `configs/` (`4xb2` = global batch 8 on Cityscapes and Mapillary, `4xb4` '
      '= 16 on the other data sets; OCRNet R-101\'s `b8` / `b16` are `4xb2` / `8xb2`). v0.x\'s '
      'names carry a few more parts, kept: `4x4` (4 GPUs x 4 images, the data set\'s usual '
      'batch), `d6_` (FCN-D6: FCN heads at dilation 6 on an output-stride-16 ResNet, 1.x '
      '`fcn-d6_`), `_rsb-pretrain` (a ResNet-50 from mmcls\' rsb-A1 ImageNet weights) and '
      '`_adamw` (its AdamW recipe: warmup, step decay, gradient clipping). The Mapillary row is '
      'MMSeg 1.x\'s only, named as the others.',
      '- **Cityscapes → Dark Zurich / Nighttime Driving**: a Cityscapes model\'s config that '
      'is evaluated on that night-time set at 1920x1080 (`data.test_dataset`, '
      '`data.test_img_scale`); it trains on Cityscapes. MMSeg 1.2.2\'s metafiles have no '
      'results for these rows; their checkpoints are the Cityscapes rows\' of the same backbone '
      'and schedule.',
      '- **(fp16)**: MMSeg\'s mixed-precision rows (`_fp16_`, 1.x `-amp-`: AmpOptimWrapper with '
      'a static loss scale of 512); jseg trains them with `precision=float16` and '
      '`train.loss_scale=512.0` (see getting_started.md, "Precision and memory").',
      '- **weights**: the checkpoint MMSeg publishes, as jseg\'s table has it (the config '
      'file\'s `WEIGHTS`, `jseg.zoo.url(METHOD, VARIANT)`: the files of MMSeg 1.2.2\'s '
      'metafiles, at download.openmmlab.com where pspnet\'s metafile misspells the host once). '
      'Without network, `--checkpoint=zoo` fails naming the URL and the path where the file is '
      'expected: download it elsewhere and put it there. Or convert a downloaded file yourself '
      'with the `python -m jseg.convert` commands under each table: they write an orbax '
      'checkpoint directory for `--checkpoint=DIR` (`jseg.checkpoints.restore_variables(DIR)` '
      'reads it).',
      '- *not published*: MMSeg 1.2.2 has the config but no result or weights for it; jseg '
      'trains it from scratch like any other variant, and `--checkpoint=zoo` on it fails '
      'naming the closest variants that have weights.',
      '- Every backbone of the Cityscapes / ADE20K / VOC rows also has a `_64x64_2k_synthetic` '
      'variant (jseg\'s procedural quick-start '
      'data set, not in MMSeg\'s zoo), e.g. `configs/fcn.py:r18w16-d8_64x64_2k_synthetic`.',
      '',
  ]
  methods = list(dict.fromkeys(r['method'] for r in table))
  lines.append('Methods: ' + ', '.join(
      f'[{TITLES.get(m, m)}](#{_anchor(TITLES.get(m, m))})' for m in methods) + '.')
  for method in methods:
    title = TITLES.get(method, method)
    method_rows = [r for r in table if r['method'] == method]
    lines += ['', f'## {title}', '', f'`configs/{method}.py`', '',
              '| backbone | data set | crop | schedule | mIoU | mIoU (ms+flip) | jseg config '
              '| MMSeg 1.x config | weights |',
              '| --- | --- | --- | --- | ---: | ---: | --- | --- | --- |']
    notes = []
    for r in method_rows:
      crop = r['crop'] + (f' ({r["batch"]})' if r['batch'] else '')
      if r['weights']:
        weights = f'[{os.path.basename(r["weights"])}]({r["weights"]})'
        miou, miou_ms = r['miou'], r['miou_ms']
        if r['filed_under']:
          miou += ' †'
          notes.append(f'† `{r["variant"]}`: MMSeg 1.2.2\'s metafile files this result under '
                       f'`{os.path.basename(r["filed_under"])[:-3]}`; the weights\' name says '
                       'which variant they are.')
      else:
        weights, miou, miou_ms = '*not published*', '—', '—'
      lines.append(f'| {r["backbone"]} | {DATASET_NAMES.get(r["dataset"], r["dataset"])} '
                   f'| {crop} | {r["schedule"]} | {miou} | {miou_ms} '
                   f'| `configs/{method}.py:{r["variant"]}` '
                   f'| `{os.path.basename(r["mmseg_config"])[:-3]}` | {weights} |')
    if notes:
      for note in notes:
        lines += ['', note]
    commands = [import_command(r) for r in method_rows if r['weights']]
    if commands:
      first = next(r for r in method_rows if r['weights'])
      lines += ['', 'Use, e.g. to reproduce a row\'s mIoU on its prepared data set:', '',
                '```bash',
                f'python -m jseg.main --config=configs/{method}.py:{first["variant"]} '
                '--mode=eval --checkpoint=zoo',
                '```', '',
                f'<details><summary>Convert downloaded files yourself ({len(commands)} '
                'commands)</summary>', '', '```bash', *commands, '```', '', '</details>']
  return '\n'.join(lines) + '\n'


def _anchor(title: str) -> str:
  """GitHub's heading anchor."""
  keep = ''.join(ch for ch in title.lower() if ch.isalnum() or ch in ' -_')
  return keep.replace(' ', '-')


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--mmseg_configs', default=None,
                      help="MMSeg's configs folder (default: the installed mmseg's .mim/configs)")
  parser.add_argument('--out', default=OUT, help='page to write (default: docs/model_zoo.md)')
  parser.add_argument('--check', action='store_true',
                      help='write nothing; exit 1 if the page is out of date')
  args = parser.parse_args(argv)
  mmseg_configs = args.mmseg_configs or default_mmseg_configs()
  if not mmseg_configs:
    parser.error('mmsegmentation is not installed: pip install mmsegmentation==1.2.2, '
                 'or pass --mmseg_configs=DIR')
  text = render(mmseg_configs)
  if args.check:
    current = open(args.out).read() if os.path.exists(args.out) else ''
    if current != text:
      print(f'{args.out} is out of date: run python docs/make_model_zoo.py', file=sys.stderr)
      return 1
    return 0
  with open(args.out, 'w') as f:
    f.write(text)
  print(f'wrote {args.out} ({text.count(chr(10))} lines)')
  return 0


if __name__ == '__main__':
  sys.exit(main())
