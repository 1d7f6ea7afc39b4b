"""LoveDA, Potsdam, Vaihingen, iSAID, Dark Zurich, Nighttime Driving against MMSeg 1.2.2.

Tiny fakes in the downloads' layouts (zips as downloaded) are prepared by jseg and, for the
converted data sets, converted by MMSeg's own converter scripts (tools/dataset_converters,
shipped in mmseg/.mim) with the same (small) tile sizes. MMSeg's dataset class reads the
converted files with LoadImageFromFile + LoadAnnotations; jseg's prepared split must give the
same names in the same order, the same images and the same labels (after reduce_zero_label
where MMSeg applies it), and MMSeg's classes and palette. The defaults' tiling arithmetic and the
colour-to-id mappings are checked against values worked out from the converters' code. The Dark
Zurich and LoveDA variants evaluate as MMSeg's configs test: on their test set, at their test
scale.
"""
import ast
import os
import runpy
import sys
import zipfile

import cv2
import numpy as np
import pytest
from PIL import Image

import mmseg_ref  # noqa: F401  (installs the mmcv.ops stand-in before any mmseg import)
import mmseg
from mmcv.transforms import LoadImageFromFile
from mmseg.datasets import (DarkZurichDataset, ISPRSDataset, LoveDADataset, NightDrivingDataset,
                            PotsdamDataset, iSAIDDataset)
from mmseg.datasets.transforms import LoadAnnotations

from jseg import config as jconfig
from jseg.data import datasets, isaid, isprs, loader, prepare, transforms
from jseg.data.sources import DataError

CONVERTERS = os.path.join(os.path.dirname(mmseg.__file__), '.mim', 'tools', 'dataset_converters')


def _png(array) -> bytes:
  return cv2.imencode('.png', array)[1].tobytes()


def _tif(array) -> bytes:
  return cv2.imencode('.tif', array)[1].tobytes()


def _zip(path, files):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with zipfile.ZipFile(path, 'w') as z:
    for rel, data in files.items():
      z.writestr(rel, data)


def _convert(name, monkeypatch, *args):
  """Runs MMSeg's tools/dataset_converters/NAME.py with ``args`` as its command line."""
  monkeypatch.setattr(sys, 'argv', [f'{name}.py', *map(str, args)])
  runpy.run_path(os.path.join(CONVERTERS, f'{name}.py'), run_name='__main__')


def _mmseg_read(dataset_cls, root, img_dir, ann_dir):
  """[(name, img, gt_seg_map)] as MMSeg's ``dataset_cls`` loads the files, and the dataset."""
  ds = dataset_cls(data_root=str(root), data_prefix=dict(img_path=img_dir, seg_map_path=ann_dir),
                   pipeline=[LoadImageFromFile(), LoadAnnotations()], serialize_data=False)
  items = []
  for i in range(len(ds)):
    results = ds[i]
    name = os.path.basename(results['img_path'])[:-len(ds.img_suffix)]
    items.append((name, results['img'], results['gt_seg_map']))
  return items, ds


def _assert_as_mmseg(name, out, split, dataset_cls, root, img_dir, ann_dir, min_samples=2):
  """jseg's prepared ``split`` of ``name`` is what MMSeg's dataset class reads from ``root``."""
  want, ds = _mmseg_read(dataset_cls, root, img_dir, ann_dir)
  info = datasets.dataset_info(name)
  assert info.classes == tuple(ds.metainfo['classes']) == tuple(dataset_cls.METAINFO['classes'])
  assert [list(p) for p in info.palette] == [list(p) for p in dataset_cls.METAINFO['palette']]
  assert info.reduce_zero_label == ds.reduce_zero_label
  src = datasets.open_split(name, split, out)
  got = [src[i] for i in range(len(src))]
  assert [g['name'] for g in got] == [n for n, _, _ in want]  # MMSeg's order
  assert len(got) >= min_samples
  for g, (n, img, label) in zip(got, want):
    np.testing.assert_array_equal(g['img'], img, err_msg=n)
    raw = g['gt_seg_map']
    np.testing.assert_array_equal(transforms.reduce_zero_label(raw) if info.reduce_zero_label
                                  else raw, label, err_msg=n)
  return got


# --- ISPRS Potsdam and Vaihingen ----------------------------------------------------------------

def _isprs_label(rng, h, w):
  """A label image (BGR) of the ISPRS colours, black (eroded boundary) and colours outside the
  colour map: BGR (0, 170, 0) has blue's sum 2 B + 3 G + 4 R = 510, (7, 7, 7) no class's."""
  colors = np.array([c[::-1] for c in isprs.PALETTE] + [(0, 0, 0), (0, 170, 0), (7, 7, 7)],
                    np.uint8)
  return colors[rng.integers(0, len(colors), (h, w))]


def test_isprs_colors_to_ids():
  """The converters' mapping, worked out from their ``2 B + 3 G + 4 R`` sums: the ISPRS RGB
  colours (MMSeg's palette) give ids 1..6, black 0, a colour with a class's sum that class."""
  bgr = np.array([[c[::-1] for c in isprs.PALETTE] + [(0, 0, 0), (0, 170, 0), (7, 7, 7),
                                                       (0, 0, 128)]], np.uint8)
  assert isprs.colors_to_ids(bgr).tolist() == [[1, 2, 3, 4, 5, 6, 0, 2, 0, 0]]
  assert transforms.reduce_zero_label(isprs.colors_to_ids(bgr)).tolist() == [
      [0, 1, 2, 3, 4, 5, 255, 1, 255, 255]]


def _converter_literal(name, target):
  """The literal assigned to ``target`` in MMSeg's converter NAME.py (``np.array(x)``: x)."""
  with open(os.path.join(CONVERTERS, f'{name}.py')) as f:
    tree = ast.parse(f.read())
  for node in ast.walk(tree):
    if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == target:
      value = node.value.args[0] if isinstance(node.value, ast.Call) else node.value
      return ast.literal_eval(value)
  raise AssertionError(f'{name}.py assigns no {target}')


def test_isprs_constants_are_the_converters():
  for name, train in (('potsdam', isprs.POTSDAM_TRAIN), ('vaihingen', isprs.VAIHINGEN_TRAIN)):
    assert tuple(_converter_literal(name, 'splits')['train']) == train
    assert tuple(map(tuple, _converter_literal(name, 'color_map'))) == isprs.COLOR_MAP
  assert len(_converter_literal('potsdam', 'splits')['val']) == 14
  assert tuple(runpy.run_path(os.path.join(CONVERTERS, 'isaid.py'))['iSAID_palette'].values()) \
      == isaid.PALETTE


def test_isprs_default_tiling():
  """A 6000 x 6000 Potsdam image: the converter's origins step by clip_size (512), the last
  moved back to end at the border: 12 x 12 tiles, 24 x 144 = 3456 train and 14 x 144 = 2016 val
  tiles, MMSeg's documented counts."""
  boxes = isprs.clip_boxes(6000, 6000)
  starts = list(range(0, 5121, 512)) + [5488]
  assert boxes == [(x, y, x + 512, y + 512) for y in starts for x in starts]
  assert len(boxes) * len(isprs.POTSDAM_TRAIN) == 3456 and len(boxes) * 14 == 2016
  # clip 16, stride 8 on 40 x 50 (the fakes below): ceil((50 - 16) / 8) = 5 -> origins 0, 16,
  # ..., 80 (x 16), those past 34 moved back to 34; rows: 3 -> 0, 16, 32, 48 -> 0, 16, 24.
  assert isprs.clip_boxes(40, 50, 16, 8) == [(x, y, x + 16, y + 16) for y in (0, 16, 24)
                                             for x in (0, 16, 32, 34)]


POTSDAM = {'2_10': (40, 50), '6_7': (37, 45), '2_13': (33, 47)}  # area: (h, w); 2_13 is val


def _potsdam(tmp_path, rng, label_width=None):
  """The two zips MMSeg asks for; ``label_width``: {area: a wrong label width}."""
  src = tmp_path / 'potsdam'
  images, labels = {}, {}
  for area, (h, w) in POTSDAM.items():
    images[f'2_Ortho_RGB/top_potsdam_{area}_RGB.tif'] = _tif(rng.integers(0, 256, (h, w, 3),
                                                                           dtype=np.uint8))
    images[f'2_Ortho_RGB/top_potsdam_{area}_RGB.tfw'] = b'0.05\n0\n0\n-0.05\n0\n0\n'
    labels[f'top_potsdam_{area}_label_noBoundary.tif'] = _tif(
        _isprs_label(rng, h, (label_width or {}).get(area, w)))
  _zip(str(src / '2_Ortho_RGB.zip'), images)
  _zip(str(src / '5_Labels_all_noBoundary.zip'), labels)
  return src


def test_potsdam_as_mmseg(tmp_path, monkeypatch):
  src = _potsdam(tmp_path, np.random.default_rng(0))
  out = str(tmp_path / 'data')
  prepare.prepare('potsdam', str(src), out, clip_size=16, stride_size=8)
  converted = tmp_path / 'converted'
  _convert('potsdam', monkeypatch, src, '-o', converted, '--clip_size', 16, '--stride_size', 8)
  for split in ('train', 'val'):
    got = _assert_as_mmseg('potsdam', out, split, PotsdamDataset, converted, f'img_dir/{split}',
                           f'ann_dir/{split}')
    assert {g['name'].rsplit('_', 4)[0] for g in got} == (
        {'2_10', '6_7'} if split == 'train' else {'2_13'})
  assert len(datasets.open_split('potsdam', 'train', out)) == 4 * 3 + 3 * 3  # 40x50, 37x45


def test_vaihingen_as_mmseg(tmp_path, monkeypatch):
  rng = np.random.default_rng(1)
  src = tmp_path / 'vaihingen'
  images, labels = {}, {}
  for area, (h, w) in {'area1': (40, 50), 'area3': (35, 30), 'area6': (33, 47)}.items():
    images[f'top/top_mosaic_09cm_{area}.tif'] = _tif(rng.integers(0, 256, (h, w, 3),
                                                                  dtype=np.uint8))
    images[f'gts_for_participants/top_mosaic_09cm_{area}.tif'] = _tif(_isprs_label(rng, h, w))
    labels[f'top_mosaic_09cm_{area}_noBoundary.tif'] = _tif(_isprs_label(rng, h, w))
  labels['top_mosaic_09cm_area9_noBoundary.tif'] = _tif(_isprs_label(rng, 20, 20))  # no image
  _zip(str(src / 'ISPRS_semantic_labeling_Vaihingen.zip'), images)
  _zip(str(src / 'ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE.zip'), labels)
  out = str(tmp_path / 'data')
  prepare.prepare('vaihingen', str(src), out, clip_size=16, stride_size=8)
  converted = tmp_path / 'converted'
  _convert('vaihingen', monkeypatch, src, '-o', converted, '--clip_size', 16, '--stride_size', 8)
  for split in ('train', 'val'):
    _assert_as_mmseg('vaihingen', out, split, ISPRSDataset, converted, f'img_dir/{split}',
                     f'ann_dir/{split}')


def test_potsdam_label_size_mismatch_names_the_file(tmp_path):
  src = _potsdam(tmp_path, np.random.default_rng(2), label_width={'6_7': 44})
  out = str(tmp_path / 'data')
  with pytest.raises(DataError) as e:
    prepare.prepare('potsdam', str(src), out, clip_size=16, stride_size=8)
  assert str(e.value) == (
      f'{src / "5_Labels_all_noBoundary.zip"}:top_potsdam_6_7_label_noBoundary.tif is 44x37 '
      f'(WxH) but its image {src / "2_Ortho_RGB.zip"}:2_Ortho_RGB/top_potsdam_6_7_RGB.tif is '
      '45x37')
  assert not os.path.exists(os.path.join(out, 'potsdam'))


# --- iSAID ------------------------------------------------------------------------------------

def test_isaid_colors_and_default_tiling():
  """The converter's iSAID_convert_from_color on mmcv.imread(..., channel_order='rgb'): RGB
  palette colours give their index, others 0 (RGB (63, 0, 0) is not ship's (0, 0, 63))."""
  bgr = np.array([[c[::-1] for c in isaid.PALETTE] + [(1, 2, 3), (0, 0, 63), (127, 0, 0)]],
                 np.uint8)
  assert isaid.colors_to_ids(bgr).tolist() == [list(range(16)) + [0, 0, 9]]
  # 4000 x 4000: x in range(0, 4000, 512), 3584 + 896 > 4000 -> moved to 3104.
  starts = list(range(0, 3073, 512)) + [3104]
  assert isaid.patch_boxes(4000, 4000) == [(y, y + 896, x, x + 896) for x in starts
                                           for y in starts]
  assert isaid.padded_size(800, 1000) == (896, 1000)  # padded in h; x: 0 and 1000 - 896
  assert isaid.patch_boxes(896, 1000) == [(0, 896, 0, 896), (0, 896, 104, 1000)]
  assert isaid.padded_size(800, 800) == (896, 896)
  assert isaid.padded_size(800, 896) == (800, 896)  # no case of the converter's pads it:
  assert isaid.patch_boxes(800, 896) == [(-96, 800, 0, 896)]  # rows [-96:800], the last 96


ISAID = {'train': {'P0000': (40, 50), 'P0001': (10, 30), 'P0002': (10, 12), 'P0003': (10, 16)},
         'val': {'P0004': (33, 47), 'P0005': (20, 9)}}  # (h, w); patch 16, overlap 6


def _isaid_mask(rng, h, w):
  colors = np.array([c[::-1] for c in isaid.PALETTE] + [(5, 6, 7)], np.uint8)  # BGR
  return colors[rng.integers(0, len(colors), (h, w))]


def test_isaid_as_mmseg(tmp_path, monkeypatch):
  rng = np.random.default_rng(3)
  src = tmp_path / 'iSAID'
  for split, images in ISAID.items():
    imgs, masks = {}, {}
    for stem, (h, w) in images.items():
      img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
      imgs[f'images/{stem}.png'] = _png(img[..., 0] if stem == 'P0001' else img)  # one gray
      masks[f'images/{stem}_instance_color_RGB.png'] = _png(_isaid_mask(rng, h, w))
    _zip(str(src / split / 'images' / 'part1.zip'), imgs)
    _zip(str(src / split / 'Semantic_masks' / 'images.zip'), masks)
  _zip(str(src / 'test' / 'images' / 'part1.zip'), {'images/P0006.png': _png(img)})
  out = str(tmp_path / 'data')
  prepare.prepare('isaid', str(tmp_path), out, patch_size=16, overlap=6)  # the folder above
  # The converter saves labels as Image.fromarray(label, mode='P') without a palette: Pillow >=
  # 8.3 writes those as 1-bit PNGs (python-pillow/Pillow#6210: all classes > 0 become 1). Give
  # them a palette, as older Pillow did, so that it writes the ids it means to.
  fromarray = Image.fromarray

  def fromarray_with_palette(array, mode=None):
    im = fromarray(array, mode) if mode else fromarray(array)
    if mode == 'P':
      im.putpalette(list(range(256)) * 3)  # 256 entries: 8-bit PNG
    return im

  monkeypatch.setattr(Image, 'fromarray', fromarray_with_palette)
  converted = tmp_path / 'converted'
  _convert('isaid', monkeypatch, src, '-o', converted, '--patch_width', 16, '--patch_height', 16,
           '--overlap_area', 6)
  for split in ('train', 'val'):
    got = {g['name']: g for g in _assert_as_mmseg('isaid', out, split, iSAIDDataset, converted,
                                                  f'img_dir/{split}', f'ann_dir/{split}')}
    assert {name.split('_')[0] for name in got} == set(ISAID[split])
    if split == 'train':  # P0002 (10 x 12) padded to 16 x 16 with 255; P0003 (10 x 16) is not
      assert got['P0002_0_16_0_16']['gt_seg_map'][10:].tolist() == [[255] * 16] * 6
      assert got['P0003_-6_10_0_16']['img'].shape == (6, 16, 3)  # rows [-6:10]


def test_isaid_missing_mask_names_the_file(tmp_path):
  rng = np.random.default_rng(4)
  for split in ('train', 'val'):
    _zip(str(tmp_path / split / 'images' / 'part1.zip'),
         {'images/P0000.png': _png(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))})
    _zip(str(tmp_path / split / 'Semantic_masks' / 'images.zip'), {'images/P0001.png': b''})
  with pytest.raises(DataError) as e:
    isaid.splits(str(tmp_path))
  masks = tmp_path / 'train' / 'Semantic_masks'
  assert str(e.value) == (f'image {tmp_path / "train" / "images" / "part1.zip"}:images/P0000.png '
                          f'has no label: {masks / "images" / "P0000_instance_color_RGB.png"} '
                          'is missing')


# --- LoveDA -----------------------------------------------------------------------------------

def _loveda(tmp_path, monkeypatch):
  """LoveDA's zips, prepared by jseg into ``out`` and converted by MMSeg's converter."""
  rng = np.random.default_rng(5)
  src = tmp_path / 'loveDA'
  numbers = {'Train': {'Rural': (0, 1, 10), 'Urban': (2, 1366)},
             'Val': {'Rural': (2522, 2523), 'Urban': (3000,)},
             'Test': {'Rural': (4191,), 'Urban': (5000,)}}
  for folder, locations in numbers.items():
    files = {}
    for location, ns in locations.items():
      for n in ns:
        files[f'{folder}/{location}/images_png/{n}.png'] = _png(
            rng.integers(0, 256, (33, 47, 3), dtype=np.uint8))
        if folder != 'Test':
          files[f'{folder}/{location}/masks_png/{n}.png'] = _png(
              rng.integers(0, 8, (33, 47), dtype=np.uint8))  # 0 = no-data, 1..7 the classes
    _zip(str(src / f'{folder}.zip'), files)
  out = str(tmp_path / 'data')
  prepare.prepare('loveda', str(src), out)
  converted = tmp_path / 'converted'
  _convert('loveda', monkeypatch, src, '-o', converted)
  return out, converted


def test_loveda_as_mmseg(tmp_path, monkeypatch):
  out, converted = _loveda(tmp_path, monkeypatch)
  got = _assert_as_mmseg('loveda', out, 'train', LoveDADataset, converted, 'img_dir/train',
                         'ann_dir/train')
  assert [g['name'] for g in got] == ['0', '1', '10', '1366', '2']
  _assert_as_mmseg('loveda', out, 'val', LoveDADataset, converted, 'img_dir/val', 'ann_dir/val')


# --- Dark Zurich and Nighttime Driving ----------------------------------------------------------

def _train_ids(rng, h=33, w=47):
  return rng.choice(np.r_[0:19, 255], (h, w)).astype(np.uint8)


def _dark_zurich(tmp_path):
  """Dark Zurich's val folder (extracted, as MMSeg reads it), prepared by jseg into ``out``."""
  rng = np.random.default_rng(6)
  root = tmp_path / 'dark_zurich'
  for frame in ('000321', '000002', '001005'):
    stem = f'GOPR0356_frame_{frame}'
    for rel, data in {
        f'rgb_anon/val/night/GOPR0356/{stem}_rgb_anon.png': _png(
            rng.integers(0, 256, (33, 47, 3), dtype=np.uint8)),
        f'rgb_anon/val_ref/day/GOPR0356_ref/{stem}_ref_rgb_anon.png': _png(np.zeros((4, 4, 3))),
        f'gt/val/night/GOPR0356/{stem}_gt_labelTrainIds.png': _png(_train_ids(rng)),
        f'gt/val/night/GOPR0356/{stem}_gt_labelIds.png': _png(np.full((33, 47), 40, np.uint8)),
        f'gt/val/night/GOPR0356/{stem}_gt_invIds.png': _png(np.zeros((33, 47), np.uint8)),
    }.items():
      os.makedirs(os.path.dirname(root / rel), exist_ok=True)
      (root / rel).write_bytes(data)
  out = str(tmp_path / 'data')
  prepare.prepare('dark_zurich', str(root), out)
  return root, out


def test_dark_zurich_as_mmseg(tmp_path):
  root, out = _dark_zurich(tmp_path)
  _assert_as_mmseg('dark_zurich', out, 'val', DarkZurichDataset, root,
                   'rgb_anon/val/night/GOPR0356', 'gt/val/night/GOPR0356', min_samples=3)
  with pytest.raises(ValueError, match="no split 'train'; its splits: val"):
    datasets.open_split('dark_zurich', 'train', out)


def test_night_driving_zip_as_mmseg(tmp_path):
  rng = np.random.default_rng(7)
  files = {}
  for k in range(3):
    stem = f'{k}_frame_{k:04d}'
    files[f'NighttimeDrivingTest/leftImg8bit/test/night/{stem}_leftImg8bit.png'] = _png(
        rng.integers(0, 256, (33, 47, 3), dtype=np.uint8))
    gt = f'NighttimeDrivingTest/gtCoarse_daytime_trainvaltest/test/night/{stem}_gtCoarse'
    files[f'{gt}_labelTrainIds.png'] = _png(_train_ids(rng))
    files[f'{gt}_labelIds.png'] = _png(np.full((33, 47), 40, np.uint8))
  _zip(str(tmp_path / 'NighttimeDrivingTest.zip'), files)
  out = str(tmp_path / 'data')
  prepare.prepare('night_driving', str(tmp_path), out)
  extracted = tmp_path / 'extracted'
  with zipfile.ZipFile(tmp_path / 'NighttimeDrivingTest.zip') as z:
    z.extractall(extracted)
  _assert_as_mmseg('night_driving', out, 'val', NightDrivingDataset,
                   extracted / 'NighttimeDrivingTest', 'leftImg8bit/test/night',
                   'gtCoarse_daytime_trainvaltest/test/night', min_samples=3)


def test_night_driving_missing_label_names_the_file(tmp_path):
  night = tmp_path / 'leftImg8bit' / 'test' / 'night'
  os.makedirs(night)
  (night / 'a_leftImg8bit.png').write_bytes(_png(np.zeros((4, 4, 3), np.uint8)))
  with pytest.raises(DataError) as e:
    prepare.prepare('night_driving', str(tmp_path), str(tmp_path / 'data'))
  gt = tmp_path / 'gtCoarse_daytime_trainvaltest' / 'test' / 'night'
  assert str(e.value) == (f'image {night / "a_leftImg8bit.png"} has no label: '
                          f'{gt / "a_gtCoarse_labelTrainIds.png"} is missing')


# --- What a variant evaluates on --------------------------------------------------------------

def _assert_evaluates_as_mmseg(method, variant, out, root):
  """The evaluation samples of ``variant`` (its test set and test pipeline:
  jseg.data.loader.eval_samples) are MMSeg's: its config's test dataset and pipeline on the files
  in ``root``, then its data preprocessor."""
  from mmengine.dataset import pseudo_collate
  from mmseg.registry import DATASETS, MODELS
  mm = mmseg_ref.mmseg_config(method, variant)
  dataset = DATASETS.build(dict(mm.test_dataloader.dataset, data_root=str(root)))
  preprocessor = MODELS.build(mm.model.data_preprocessor)
  config = jconfig.load(f'configs/{method}.py:{variant}')
  scale = tuple(config.data.test_img_scale)
  assert scale != tuple(config.data.img_scale)
  got = list(loader.eval_samples(config, data_dir=out, progress=False))
  assert len(got) == len(dataset) >= 3
  for i, (inputs, label) in enumerate(got):
    want = preprocessor(pseudo_collate([dataset[i]]), training=False)
    np.testing.assert_array_equal(inputs[0], want['inputs'][0].permute(1, 2, 0).numpy())
    np.testing.assert_array_equal(label, want['data_samples'][0].gt_sem_seg.data[0].numpy())
    h, w = inputs.shape[1:3]  # keep-ratio into the test scale
    assert max(h, w) == max(scale) or min(h, w) == min(scale)


def test_dark_variant_evaluates_on_dark_zurich_at_its_test_scale(tmp_path):
  """A Cityscapes-trained variant evaluates on Dark Zurich's val images (the only data set
  prepared), resized into (1920, 1080)."""
  root, out = _dark_zurich(tmp_path)
  config = jconfig.load('configs/pspnet.py:r50-d8_512x1024_40k_dark')
  assert (config.data.dataset, config.data.test_dataset) == ('cityscapes', 'dark_zurich')
  _assert_evaluates_as_mmseg('pspnet', 'r50-d8_512x1024_40k_dark', out, root)


def test_loveda_variant_evaluates_at_its_test_scale(tmp_path, monkeypatch):
  """LoveDA trains at (2048, 512) and tests at (1024, 1024)."""
  out, converted = _loveda(tmp_path, monkeypatch)
  _assert_evaluates_as_mmseg('pspnet', 'r50-d8_512x512_80k_loveda', out, converted)
