"""The docs cannot drift: docs/model_zoo.md is what docs/make_model_zoo.py generates now, lists
every config variant, and the commands in the docs use only flags that exist."""
import glob
import importlib.util
import os
import re
import shlex

import nbformat
import pytest

from jseg import config as jconfig
from jseg import zoo as jzoo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _zoo_module():
  spec = importlib.util.spec_from_file_location(
      'make_model_zoo', os.path.join(ROOT, 'docs', 'make_model_zoo.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


zoo = _zoo_module()
MMSEG_CONFIGS = zoo.default_mmseg_configs()


def _read(path):
  with open(os.path.join(ROOT, path)) as f:
    return f.read()


def test_model_zoo_is_up_to_date():
  assert MMSEG_CONFIGS, 'mmsegmentation 1.2.2 (the test extra) holds the metafiles'
  assert _read('docs/model_zoo.md') == zoo.render(MMSEG_CONFIGS), (
      'docs/model_zoo.md is out of date: run python docs/make_model_zoo.py')


# MMSeg 1.2.2's pspnet metafile misspells the host of this one checkpoint.
METAFILE_TYPOS = {'https://download.oz1z1penmmlab.com/': 'https://download.openmmlab.com/'}


def test_every_published_variant_has_mmseg_1_2_2s_weights_url():
  """The metafiles' ``Weights`` (MMSeg 1.2.2's, read by docs/make_model_zoo.py's lookup) of
  every config variant, against jseg.zoo.url: the same 352 URLs, and no variant more."""
  variants = zoo.config_variants()
  entries = zoo.published(MMSEG_CONFIGS,
                          tuple(jconfig.MMSEG_NAMES.get(m, (m, m))[0] for m in variants))
  checked = 0
  for method, names in variants.items():
    published = jzoo._config_file(method).WEIGHTS
    for variant in names:
      if jconfig.split_variant(variant).dataset in jconfig.JSEG_DATASETS:
        assert variant not in published
        continue
      entry, _ = zoo.lookup(method, variant, jconfig.mmseg_config_name(method, variant), entries)
      if entry is None:
        assert variant not in published, (method, variant)
        with pytest.raises(ValueError, match='published no weights.*closest variants with '
                                             'weights: '):
          jzoo.url(method, variant)
        continue
      want = entry['Weights']
      for typo, right in METAFILE_TYPOS.items():
        want = want.replace(typo, right)
      assert jzoo.url(method, variant) == want, (method, variant)
      checked += 1
    assert set(published) <= set(names), method
  assert checked == 352


def test_model_zoo_lists_every_variant():
  page = _read('docs/model_zoo.md')
  variants = zoo.config_variants()
  assert set(variants) == {os.path.basename(p)[:-3] for p in glob.glob(f'{ROOT}/configs/*.py')}
  listed = set(re.findall(r'\| `configs/(\w+)\.py:([\w-]+)` \|', page))
  expected = {(m, v) for m, vs in variants.items() for v in vs
              if jconfig.split_variant(v).dataset not in jconfig.JSEG_DATASETS}
  assert listed == expected
  rows = zoo.rows(MMSEG_CONFIGS)
  published = [r for r in rows if r['weights']]
  # MMSeg 1.2.2's metafiles have no UperNet R-18 entries, Pascal Context results of R-101 and
  # HRNet-W48 only (DeepLabV3+'s R-101 ones filed under its R-50 configs) and no Dark Zurich /
  # Nighttime Driving results; everything else is published.
  context = ('pascal_context', 'pascal_context_59')
  unpublished = ({('upernet', 'r18', d) for d in ('cityscapes', 'ade20k', 'voc12aug')}
                 | {(m, 'r50-d8', d) for m in ('fcn', 'pspnet', 'deeplabv3', 'deeplabv3plus')
                    for d in context}
                 | {('hrnet', b, d) for b in ('hr18s', 'hr18') for d in context}
                 | {('pspnet', b, d) for b in ('r50-d8', 'r101-d8', 'r101b-d8')
                    for d in ('dark', 'night_driving')})
  assert {(r['method'], r['backbone'], r['dataset']) for r in rows if not r['weights']} == \
      unpublished
  assert page.count('python -m jseg.convert ') == len(published)
  for r in published:
    assert f'--config=configs/{r["method"]}.py:{r["variant"]} --checkpoint=' \
           f'{os.path.basename(r["weights"])} ' in page


def test_model_zoo_matches_by_weights_not_by_mislabelled_metafile_entries():
  """MMSeg 1.2.2's metafile files OCRNet HRNet ADE20K 160k results under the 80k config."""
  rows = {(r['method'], r['variant']): r for r in zoo.rows(MMSEG_CONFIGS)}
  r80, r160 = rows['ocrnet', 'hr18s_512x512_80k_ade20k'], rows['ocrnet', 'hr18s_512x512_160k_ade20k']
  assert '_80k_ade20k_' in r80['weights'] and '_160k_ade20k_' in r160['weights']
  assert (r80['miou'], r160['miou']) == ('35.06', '37.19')  # MMSeg's README: 35.06 / 37.19
  assert r160['filed_under'] == 'ocrnet/ocrnet_hr18s_4xb4-80k_ade20k-512x512.py'
  b16 = rows['ocrnet', 'r101-d8_512x1024_80k_b16_cityscapes']
  assert b16['mmseg_config'] == 'ocrnet/ocrnet_r101-d8_8xb2-80k_cityscapes-512x1024.py'
  assert (b16['miou'], b16['miou_ms']) == ('80.81', '—')


def test_check_mode_reports_a_stale_page(tmp_path, capsys):
  stale = tmp_path / 'model_zoo.md'
  stale.write_text('# old\n')
  assert zoo.main(['--check', f'--out={stale}']) == 1
  assert 'out of date' in capsys.readouterr().err
  assert zoo.main([f'--out={stale}']) == 0
  assert zoo.main(['--check', f'--out={stale}']) == 0


# ---- commands in the docs use flags that exist ----------------------------------------------

def _defined_flags(path):
  source = _read(path)
  return set(re.findall(r"DEFINE_\w+\(\s*'(\w+)'", source)) | set(
      re.findall(r"add_argument\('--(\w+)'", source))


def _doc_texts():
  for path in ['README.md'] + sorted(glob.glob('docs/*.md', root_dir=ROOT)):
    yield path, _read(path)
  for path in sorted(glob.glob('notebooks/*.ipynb', root_dir=ROOT)):
    nb = nbformat.read(os.path.join(ROOT, path), as_version=4)
    yield path, '\n'.join(c.source for c in nb.cells)


def _commands(text, module):
  """Every ``python -m MODULE ...`` command line of ``text`` (backslash continuations joined)."""
  text = text.replace('\\\n', ' ')
  for line in text.splitlines():
    start = line.find(f'python -m {module} ')
    if start < 0 and line.rstrip().endswith(f'python -m {module}'):
      start = line.find(f'python -m {module}')
    if start >= 0:
      command = line[start:].split('`')[0].split('#')[0]
      yield shlex.split(command.replace('<', '').replace('>', ''))[3:]


@pytest.mark.parametrize('module,path', [('jseg.main', 'jseg/main.py'),
                                         ('jseg.convert', 'jseg/convert.py'),
                                         ('jseg.export', 'jseg/export.py'),
                                         ('jseg.data.prepare', 'jseg/data/prepare.py')])
def test_documented_commands_use_existing_flags(module, path):
  from jseg.data import datasets
  flags = _defined_flags(path)
  modes = re.search(r"DEFINE_enum\('mode', '\w+', \[([^\]]*)\]", _read('jseg/main.py')).group(1)
  modes = set(re.findall(r"'(\w+)'", modes))
  seen = 0
  for doc, text in _doc_texts():
    for args in _commands(text, module):
      seen += 1
      for arg in args:
        if not arg.startswith('--'):
          if module == 'jseg.data.prepare':
            assert arg in datasets.BUILDERS, f'{doc}: {module} {arg}: no such data set'
          continue
        name, _, value = arg[2:].partition('=')
        if name.startswith('config.'):
          continue
        assert name in flags, f'{doc}: {module} has no flag --{name}'
        if name == 'mode':
          assert value in modes, f'{doc}: --mode={value} is not one of {sorted(modes)}'
  assert seen, f'no {module} command in the docs'
