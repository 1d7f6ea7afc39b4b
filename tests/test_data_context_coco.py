"""Pascal Context (60 / 59), COCO-Stuff (10k / 164k), Mapillary Vistas v1.2: tiny fakes in the
real layouts, prepared and read back, against MMSeg's own dataset classes (and converters) on the
same files."""
import ast
import importlib.util
import io
import os
import re
import zipfile

import numpy as np
import pytest
import scipy.io
from PIL import Image

import mmseg_ref  # noqa: F401  (the mmcv.ops stand-in, before any mmseg import)
import mmseg
from mmseg import datasets as mmseg_datasets
from jseg.data import coco_stuff, datasets, prepare, transforms
from jseg.data.sources import DataError
from test_data import H, W, _image, _jpg, _nothing_written, _write

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]
CONVERTERS = os.path.join(os.path.dirname(mmseg.__file__), '.mim', 'tools', 'dataset_converters')


def _converter(name):
  """MMSeg 1.2.2's tools/dataset_converters/NAME.py (shipped in the pip package's .mim)."""
  spec = importlib.util.spec_from_file_location(f'mmseg_converter_{name}',
                                                os.path.join(CONVERTERS, f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _save(path, image: Image.Image):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  image.save(path)


def _zip(zip_path, folder, members):
  """Writes ``members`` (paths relative to ``folder``) into ``zip_path`` under the same names."""
  with zipfile.ZipFile(zip_path, 'w') as z:
    for rel in members:
      z.write(os.path.join(folder, rel), rel)


def _assert_as_mmseg(name, split, data_dir, mmseg_dataset):
  """The prepared split is MMSeg's dataset: names and order, images, labels after the
  pipeline's reduce_zero_label, classes and palette."""
  info = datasets.dataset_info(name)
  assert info.classes == tuple(mmseg_dataset.metainfo['classes'])
  assert [list(p) for p in info.palette] == [list(p) for p in mmseg_dataset.metainfo['palette']]
  assert info.reduce_zero_label == mmseg_dataset.reduce_zero_label
  src = datasets.open_split(name, split, data_dir)
  assert len(src) == len(mmseg_dataset) > 0
  for i in range(len(src)):
    got, want = src[i], mmseg_dataset[i]
    assert got['name'] == os.path.basename(want['img_path'])[:-len('.jpg')]
    np.testing.assert_array_equal(got['img'], want['img'])
    label = got['gt_seg_map']
    if info.reduce_zero_label:
      label = transforms.reduce_zero_label(label)
    assert want['gt_seg_map'].dtype == np.uint8 and want['gt_seg_map'].shape == (H, W)
    np.testing.assert_array_equal(label, want['gt_seg_map'])


# --- Pascal Context ---------------------------------------------------------------------------

PASCAL_IDS = {'train': ['2008_000007', '2008_000002'], 'val': ['2008_000008']}


def _pascal_context(tmp_path):
  """VOCdevkit/VOC2010 after MMSeg's pascal_context.py: labels 0..59 (PIL 'L' PNGs, as it saves
  them), the lists; one image in no list."""
  rng = np.random.default_rng(10)
  root = tmp_path / 'VOCdevkit' / 'VOC2010'
  for i in sum(PASCAL_IDS.values(), ['2008_000009']):
    _write(str(root / 'JPEGImages' / f'{i}.jpg'), _jpg(_image(rng)))
    label = rng.integers(0, 60, (H, W), dtype=np.uint8)
    label[0, :2] = 0, 59
    _save(str(root / 'SegmentationClassContext' / f'{i}.png'), Image.fromarray(label))
  for split, ids in PASCAL_IDS.items():
    _write(str(root / 'ImageSets' / 'SegmentationContext' / f'{split}.txt'),
           ''.join(f'{i}\n' for i in ids).encode())
  return root


@pytest.mark.parametrize('name, mmseg_class', [('pascal_context', 'PascalContextDataset'),
                                                ('pascal_context_59', 'PascalContextDataset59')])
def test_pascal_context(tmp_path, name, mmseg_class):
  root = _pascal_context(tmp_path)
  out = str(tmp_path / 'data')
  prepare.prepare(name, str(tmp_path / 'VOCdevkit'), out)
  for split, ids in PASCAL_IDS.items():
    src = datasets.open_split(name, split, out)
    assert [src[i]['name'] for i in range(len(src))] == ids  # the list's order, as ann_file
    _assert_as_mmseg(name, split, out, getattr(mmseg_datasets, mmseg_class)(
        data_root=str(root), ann_file=f'ImageSets/SegmentationContext/{split}.txt',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassContext'),
        pipeline=PIPELINE))


# --- COCO-Stuff -------------------------------------------------------------------------------

# Raw ids in the fakes: classes, unlabeled, and three of COCO's unused thing ids (the converters
# leave those as they are).
RAW_164K = np.array(list(coco_stuff.USED_IDS) + [255, 11, 25, 90])
RAW_10K = np.array([0] + [i + 1 for i in coco_stuff.USED_IDS] + [12, 26, 91])


def test_coco_stuff_id_tables_are_mmsegs_converters():
  for version, convert in (('164k', coco_stuff.ids_to_train_ids_164k),
                           ('10k', coco_stuff.ids_to_train_ids_10k)):
    text = open(os.path.join(CONVERTERS, f'coco_stuff{version}.py')).read()
    table = ast.literal_eval(re.search(r'clsID_to_trID = (\{.*?\n\})', text, re.S).group(1))
    ids = np.arange(256, dtype=np.uint8)
    want = ids.copy()
    for cls_id, train_id in table.items():  # the converters' loop
      want[ids == cls_id] = train_id
    assert convert(ids).tolist() == want.tolist(), version
  # values copied from coco_stuff164k.py / coco_stuff10k.py (11 and 12 are not in them)
  assert coco_stuff.ids_to_train_ids_164k(np.array([0, 10, 11, 12, 91, 181, 255], np.uint8)
                                          ).tolist() == [0, 10, 11, 11, 80, 170, 255]
  assert coco_stuff.ids_to_train_ids_10k(np.array([0, 1, 12, 13, 92, 182], np.uint16)
                                         ).tolist() == [0, 1, 12, 12, 81, 171]


def test_coco_stuff164k_zips_and_converted(tmp_path):
  """The downloaded zips, and MMSeg's converter output, give what COCOStuffDataset reads."""
  rng = np.random.default_rng(11)
  raw, mm = tmp_path / 'raw', tmp_path / 'coco_stuff164k'
  files = {'train2017': ['000000000009', '000000000025'], 'val2017': ['000000000139']}
  for folder, stems in files.items():
    for stem in stems:
      img = _jpg(_image(rng))
      label = Image.fromarray(rng.choice(RAW_164K, (H, W)).astype(np.uint8))
      for path in (raw / folder / f'{stem}.jpg', mm / 'images' / folder / f'{stem}.jpg'):
        _write(str(path), img)
      for path in (raw / folder / f'{stem}.png', mm / 'annotations' / folder / f'{stem}.png'):
        _save(str(path), label)
  zips = tmp_path / 'downloads'
  os.makedirs(zips)
  for folder, stems in files.items():
    _zip(zips / f'{folder}.zip', raw, [f'{folder}/{s}.jpg' for s in stems])
  _zip(zips / 'stuffthingmaps_trainval2017.zip', raw,
       [f'{f}/{s}.png' for f, stems in files.items() for s in stems])
  converter = _converter('coco_stuff164k')
  for folder, stems in files.items():
    os.makedirs(mm / 'annotations' / folder, exist_ok=True)
    for stem in stems:
      converter.convert_to_trainID(str(mm / 'annotations' / folder / f'{stem}.png'),
                                   out_mask_dir=str(mm / 'annotations'),
                                   is_train=folder == 'train2017')
  for source, out in ((zips, tmp_path / 'from_zips'), (mm, tmp_path / 'from_converted')):
    prepare.prepare('coco_stuff164k', str(source), str(out))
    for split, folder in (('train', 'train2017'), ('val', 'val2017')):
      _assert_as_mmseg('coco_stuff164k', split, str(out), mmseg_datasets.COCOStuffDataset(
          data_root=str(mm), data_prefix=dict(img_path=f'images/{folder}',
                                              seg_map_path=f'annotations/{folder}'),
          pipeline=PIPELINE))


def test_coco_stuff10k_mat_zip_and_converted(tmp_path):
  """cocostuff-10k-v1.1.zip (.mat labels), and MMSeg's converter output, give what
  COCOStuffDataset reads with coco-stuff10k.py's reduce_zero_label."""
  rng = np.random.default_rng(12)
  raw, mm = tmp_path / 'cocostuff-10k', tmp_path / 'coco_stuff10k'
  lists = {'train': ['COCO_train2014_000000000077', 'COCO_train2014_000000000009'],
           'test': ['COCO_train2014_000000000049']}
  for ids in lists.values():
    for i in ids:
      _write(str(raw / 'images' / f'{i}.jpg'), _jpg(_image(rng)))
      os.makedirs(raw / 'annotations', exist_ok=True)
      scipy.io.savemat(str(raw / 'annotations' / f'{i}.mat'),
                       {'S': rng.choice(RAW_10K, (H, W)).astype(np.uint16),
                        'L': np.zeros((1, 1))})
  for split, ids in {**lists, 'all': sum(lists.values(), [])}.items():
    _write(str(raw / 'imageLists' / f'{split}.txt'), ''.join(f'{i}\n' for i in ids).encode())
  members = [os.path.relpath(os.path.join(d, f), raw) for d, _, fs in os.walk(raw) for f in fs]
  os.makedirs(tmp_path / 'downloads')
  _zip(tmp_path / 'downloads' / 'cocostuff-10k-v1.1.zip', raw, members)
  converter = _converter('coco_stuff10k')
  for sub in ('images', 'annotations'):
    for folder in ('train2014', 'test2014'):
      os.makedirs(mm / sub / folder)
  train_list, test_list = converter.generate_coco_list(str(raw))
  for pairs, is_train in ((train_list, True), (test_list, False)):
    for pair in pairs:
      converter.convert_to_trainID(
          pair, in_img_dir=str(raw / 'images'), in_ann_dir=str(raw / 'annotations'),
          out_img_dir=str(mm / 'images'), out_mask_dir=str(mm / 'annotations'), is_train=is_train)
  for source, out in ((tmp_path / 'downloads', tmp_path / 'from_zip'),
                      (mm, tmp_path / 'from_converted')):
    prepare.prepare('coco_stuff10k', str(source), str(out))
    for split, folder in (('train', 'train2014'), ('val', 'test2014')):
      _assert_as_mmseg('coco_stuff10k', split, str(out), mmseg_datasets.COCOStuffDataset(
          data_root=str(mm), reduce_zero_label=True,
          data_prefix=dict(img_path=f'images/{folder}', seg_map_path=f'annotations/{folder}'),
          pipeline=PIPELINE))


# --- Mapillary Vistas v1.2 --------------------------------------------------------------------

def _palette_png(label, palette, path):
  image = Image.fromarray(label, mode='P')
  image.putpalette(np.array(palette, np.uint8).ravel().tolist())
  _save(path, image)


def _mapillary(tmp_path):
  """The Vistas download's layout (v1.2 and v2.0 labels, instances), extracted and zipped."""
  rng = np.random.default_rng(13)
  root = tmp_path / 'mapillary'
  palette = datasets.dataset_info('mapillary_v1').palette
  for folder, stems in (('training', ['-0a1b2c', 'Zx9_q1']), ('validation', ['abc-123'])):
    for stem in stems:
      _write(str(root / folder / 'images' / f'{stem}.jpg'), _jpg(_image(rng)))
      label = rng.integers(0, 66, (H, W), dtype=np.uint8)
      label[0, :2] = 0, 65
      _palette_png(label, palette, str(root / folder / 'v1.2' / 'labels' / f'{stem}.png'))
      _palette_png(rng.integers(0, 124, (H, W), dtype=np.uint8), palette * 2,
                   str(root / folder / 'v2.0' / 'labels' / f'{stem}.png'))  # not read
      _save(str(root / folder / 'v1.2' / 'instances' / f'{stem}.png'),
            Image.fromarray(label.astype(np.uint16) * 256))  # not read
  members = [os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs]
  os.makedirs(tmp_path / 'downloads')
  _zip(tmp_path / 'downloads' / 'mapillary-vistas-dataset.zip', root, members)
  return root


def test_mapillary_v1_zip(tmp_path):
  root = _mapillary(tmp_path)
  out = str(tmp_path / 'data')
  prepare.prepare('mapillary_v1', str(tmp_path / 'downloads'), out)
  for split, folder in (('train', 'training'), ('val', 'validation')):
    _assert_as_mmseg('mapillary_v1', split, out, mmseg_datasets.MapillaryDataset_v1(
        data_root=str(root), data_prefix=dict(img_path=f'{folder}/images',
                                              seg_map_path=f'{folder}/v1.2/labels'),
        pipeline=PIPELINE))
    sample = datasets.open_split('mapillary_v1', split, out)[0]
    # what MMSeg's projects/Mapillary_dataset converter writes: Image.open(label).convert('P')
    with Image.open(root / folder / 'v1.2' / 'labels' / f'{sample["name"]}.png') as im:
      np.testing.assert_array_equal(sample['gt_seg_map'], np.array(im.convert('P')))


def test_mapillary_v1_65_as_mmseg_config(tmp_path):
  """MMSeg's mapillary_v1_65.py data (MapillaryDataset_v1 with its 65-class metainfo, whose
  label_map ignores 'Unlabeled') on the same files."""
  from mmengine import Config
  from mmseg.registry import DATASETS as MM_DATASETS
  root = _mapillary(tmp_path)
  out = str(tmp_path / 'data')
  prepare.prepare('mapillary_v1_65', str(root), out)
  mm = Config.fromfile(os.path.join(os.path.dirname(mmseg.__file__), '.mim', 'configs', '_base_',
                                    'datasets', 'mapillary_v1_65.py'))
  for split, loader in (('train', mm.train_dataloader), ('val', mm.test_dataloader)):
    dataset = MM_DATASETS.build(dict(loader.dataset, data_root=str(root), pipeline=PIPELINE))
    assert dataset.label_map[65] == 255
    _assert_as_mmseg('mapillary_v1_65', split, out, dataset)
    src = datasets.open_split('mapillary_v1_65', split, out)
    assert all(src[i]['gt_seg_map'][0, 1] == 255 for i in range(len(src)))  # the fake's 65


# --- bad input --------------------------------------------------------------------------------

def test_broken_mat_in_zip_names_the_member(tmp_path):
  rng = np.random.default_rng(14)
  with zipfile.ZipFile(tmp_path / 'cocostuff-10k-v1.1.zip', 'w') as z:
    z.writestr('imageLists/train.txt', 'a\n')
    z.writestr('imageLists/test.txt', 'b\n')
    for i in 'ab':
      z.writestr(f'images/{i}.jpg', _jpg(_image(rng)))
      buf = io.BytesIO()
      scipy.io.savemat(buf, {'S': np.zeros((H, W), np.uint16)})
      z.writestr(f'annotations/{i}.mat', buf.getvalue() if i == 'a' else b'not a mat file')
  out = str(tmp_path / 'data')
  with pytest.raises(DataError, match=re.escape(
      f'{tmp_path / "cocostuff-10k-v1.1.zip"}:annotations/b.mat: unreadable .mat annotation')):
    prepare.prepare('coco_stuff10k', str(tmp_path), out)
  _nothing_written(out, 'coco_stuff10k')


def test_mapillary_rgb_label_names_the_file(tmp_path):
  root = _mapillary(tmp_path)
  bad = root / 'validation' / 'v1.2' / 'labels' / 'abc-123.png'
  _save(str(bad), Image.new('RGB', (W, H)))
  with pytest.raises(DataError, match=re.escape(
      f'label {bad} has shape ({H}, {W}, 3): expected a v1.2 label')):
    prepare.prepare('mapillary_v1', str(root), str(tmp_path / 'data'))


def test_pascal_context_listed_image_without_label(tmp_path):
  root = _pascal_context(tmp_path)
  os.remove(root / 'SegmentationClassContext' / '2008_000008.png')
  with pytest.raises(DataError, match=re.escape(
      f'{root / "SegmentationClassContext" / "2008_000008.png"} is missing (listed as '
      f"'2008_000008' in {root / 'ImageSets' / 'SegmentationContext' / 'val.txt'})")):
    prepare.prepare('pascal_context', str(root), str(tmp_path / 'data'))
