"""Data sets: builders on tiny fakes in the real on-disk layouts, reading back exact pixels."""
import io
import json
import os
import subprocess
import sys
import time
import zipfile

import cv2
import numpy as np
import pytest
from PIL import Image

from jseg import config as jconfig
from jseg.data import cityscapes, datasets, prepare, synthetic
from jseg.data.sources import DataError

H, W = 33, 47


def _image(rng):
  return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


def _png(array) -> bytes:
  return cv2.imencode('.png', array)[1].tobytes()


def _jpg(array) -> bytes:
  return cv2.imencode('.jpg', array)[1].tobytes()


def _write(path, data: bytes):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(data)


def _read_all(name, split, data_dir):
  src = datasets.open_split(name, split, data_dir)
  return {s['name']: s for s in (src[i] for i in range(len(src)))}


def _assert_sample(sample, img, label):
  assert sample['img'].dtype == np.uint8 and sample['img'].shape == (H, W, 3)
  assert sample['gt_seg_map'].dtype == np.uint8 and sample['gt_seg_map'].shape == (H, W)
  np.testing.assert_array_equal(sample['img'], img)
  np.testing.assert_array_equal(sample['gt_seg_map'], label)


def _nothing_written(data_dir, name):
  assert not os.path.exists(os.path.join(data_dir, name, '1.0.0'))
  if os.path.isdir(data_dir):
    assert not [e for e in os.listdir(data_dir) if e.startswith(f'.{name}.tmp')]


# --- Cityscapes -------------------------------------------------------------------------------

CITIES = {'train': ('aachen', 'bremen'), 'val': ('lindau',)}


def _cityscapes_files(rng, label_kind='labelTrainIds'):
  """{relative path: bytes} of a fake Cityscapes, with the expected (image, train ids)."""
  files, expected = {}, {}
  for split, cities in CITIES.items():
    for city in cities:
      for k in range(2):
        stem = f'{city}_00000{k}_0000{19 + k}'
        img = _image(rng)
        train_ids = rng.choice(np.r_[0:19, 255], (H, W)).astype(np.uint8)
        files[f'leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png'] = _png(img)
        if label_kind == 'labelTrainIds':
          files[f'gtFine/{split}/{city}/{stem}_gtFine_labelTrainIds.png'] = _png(train_ids)
        else:  # labelIds: pick an id for each train id (255 <- one of the ignored ids)
          to_id = {t: i for i, t in cityscapes.ID_TO_TRAIN_ID.items()}
          ids = np.vectorize(lambda t: to_id.get(t, rng.choice([0, 1, 4, 9, 29])))(train_ids)
          files[f'gtFine/{split}/{city}/{stem}_gtFine_labelIds.png'] = _png(ids.astype(np.uint8))
          files[f'gtFine/{split}/{city}/{stem}_gtFine_color.png'] = _png(img)  # ignored
        expected.setdefault(split, {})[stem] = (img, train_ids)
  return files, expected


def test_cityscapes_folders(tmp_path):
  rng = np.random.default_rng(0)
  files, expected = _cityscapes_files(rng)
  for rel, data in files.items():
    _write(str(tmp_path / 'cityscapes' / rel), data)
  out = str(tmp_path / 'data')
  prepare.prepare('cityscapes', str(tmp_path / 'cityscapes'), out)
  for split in ('train', 'val'):
    got = _read_all('cityscapes', split, out)
    assert sorted(got) == sorted(expected[split])
    for stem, (img, label) in expected[split].items():
      _assert_sample(got[stem], img, label)
  src = datasets.open_split('cityscapes', 'train', out)
  assert [src[i]['name'] for i in range(len(src))] == sorted(expected['train'])  # MMSeg's order


def test_cityscapes_zips_with_label_ids(tmp_path):
  rng = np.random.default_rng(1)
  files, expected = _cityscapes_files(rng, label_kind='labelIds')
  for zip_name, top in (('leftImg8bit_trainvaltest.zip', 'leftImg8bit/'),
                        ('gtFine_trainvaltest.zip', 'gtFine/')):
    with zipfile.ZipFile(tmp_path / zip_name, 'w') as z:
      z.writestr('README', 'x')
      for rel, data in files.items():
        if rel.startswith(top):
          z.writestr(rel, data)
  out = str(tmp_path / 'data')
  assert prepare.main(['cityscapes', f'--source={tmp_path}', f'--out={out}']) == 0
  for split in ('train', 'val'):
    got = _read_all('cityscapes', split, out)
    for stem, (img, label) in expected[split].items():
      _assert_sample(got[stem], img, label)


def test_cityscapes_id_table():
  ids = np.arange(-1, 34)
  train_ids = cityscapes.ids_to_train_ids(np.where(ids < 0, 255, ids))
  want = [255] * 8 + [0, 1, 255, 255, 2, 3, 4, 255, 255, 255, 5, 255, 6, 7, 8, 9, 10, 11, 12,
                      13, 14, 15, 255, 255, 16, 17, 18]
  assert train_ids.tolist() == want


# --- ADE20K -----------------------------------------------------------------------------------

def test_ade20k_raw_labels_and_jpeg_pixels(tmp_path):
  rng = np.random.default_rng(2)
  root = tmp_path / 'ADEChallengeData2016'
  expected = {}
  for split, folder in (('train', 'training'), ('val', 'validation')):
    for k in range(3):
      stem = f'ADE_{split}_0000000{k + 1}'
      img, label = _image(rng), rng.integers(0, 151, (H, W), dtype=np.uint8)  # 0..150, raw
      label[0, 0] = 150
      _write(str(root / 'images' / folder / f'{stem}.jpg'), _jpg(img))
      _write(str(root / 'annotations' / folder / f'{stem}.png'), _png(label))
      expected.setdefault(split, {})[stem] = (
          cv2.imread(str(root / 'images' / folder / f'{stem}.jpg')), label)
  out = str(tmp_path / 'data')
  prepare.prepare('ade20k', str(tmp_path), out)  # the folder above ADEChallengeData2016 works
  for split in ('train', 'val'):
    got = _read_all('ade20k', split, out)
    assert sorted(got) == sorted(expected[split])
    for stem, (img, label) in expected[split].items():
      _assert_sample(got[stem], img, label)  # as cv2.imread gives the JPEG


# --- VOC 2012 aug -----------------------------------------------------------------------------

def _palette_png(label):
  im = Image.fromarray(label, mode='P')
  im.putpalette(np.array(datasets.dataset_info('voc12aug').palette, np.uint8).ravel().tolist())
  buf = io.BytesIO()
  im.save(buf, 'PNG')
  return buf.getvalue()


@pytest.mark.parametrize('lists', ['aug', 'trainaug'])
def test_voc12aug(tmp_path, lists):
  rng = np.random.default_rng(3)
  root = tmp_path / 'VOCdevkit' / 'VOC2012'
  train, val, aug = ['2007_000032', '2007_000039'], ['2007_000033'], ['2008_000002', '2008_0003']
  expected = {}
  for i in train + val + aug:
    img = _image(rng)
    _write(str(root / 'JPEGImages' / f'{i}.jpg'), _jpg(img))
    img = cv2.imread(str(root / 'JPEGImages' / f'{i}.jpg'))
    label = rng.choice(np.r_[0:21, 255], (H, W)).astype(np.uint8)
    if i in aug:
      _write(str(root / 'SegmentationClassAug' / f'{i}.png'), _png(label))
    else:  # VOC's own labels are palette PNGs: their indices are the classes
      _write(str(root / 'SegmentationClass' / f'{i}.png'), _palette_png(label))
      _write(str(root / 'SegmentationClassAug' / f'{i}.png'), _png(np.zeros_like(label)))
    expected[i] = (img, label)
  lst = root / 'ImageSets' / 'Segmentation'
  _write(str(lst / 'train.txt'), '\n'.join(train).encode() + b'\n')
  _write(str(lst / 'val.txt'), '\n'.join(val).encode() + b'\n')
  if lists == 'aug':
    _write(str(lst / 'aug.txt'), '\n'.join(aug).encode())
  else:
    _write(str(lst / 'trainaug.txt'), '\n'.join(aug[:1] + train + aug[1:]).encode())
  out = str(tmp_path / 'data')
  prepare.prepare('voc12aug', str(tmp_path / 'VOCdevkit'), out)
  src = datasets.open_split('voc12aug', 'train', out)
  assert [src[i]['name'] for i in range(len(src))] == train + aug  # MMSeg's ConcatDataset
  for i in range(len(src)):
    _assert_sample(src[i], *expected[src[i]['name']])
  got = _read_all('voc12aug', 'val', out)
  assert list(got) == val
  _assert_sample(got[val[0]], *expected[val[0]])


def test_voc12aug_rejects_val_images_in_aug(tmp_path):
  root = tmp_path / 'VOC2012'
  lst = root / 'ImageSets' / 'Segmentation'
  _write(str(lst / 'train.txt'), b'a\n')
  _write(str(lst / 'val.txt'), b'b\n')
  _write(str(lst / 'aug.txt'), b'b\nc\n')
  with pytest.raises(DataError, match='val images'):
    prepare.prepare('voc12aug', str(root), str(tmp_path / 'data'))


# --- folder -----------------------------------------------------------------------------------

def test_folder_flat_with_rgb_masks_and_cli(tmp_path, capsys):
  rng = np.random.default_rng(4)
  src = tmp_path / 'mine'
  palette = [(0, 0, 0), (255, 0, 0), (0, 255, 0)]
  _write(str(src / 'classes.json'),
         json.dumps({'classes': ['bg', 'cat', 'tree'], 'palette': palette}).encode())
  expected = {}
  for k in range(12):
    img, label = _image(rng), rng.integers(0, 3, (H, W), dtype=np.uint8)
    _write(str(src / 'images' / f'im{k:02d}.png'), _png(img))
    rgb = np.array(palette, np.uint8)[label]
    if k % 2:  # RGB masks map through the palette; others hold class ids
      _write(str(src / 'masks' / f'im{k:02d}.png'), _png(rgb[..., ::-1]))
    else:
      _write(str(src / 'masks' / f'im{k:02d}.png'), _png(label))
    expected[f'im{k:02d}'] = (img, label)
  out = str(tmp_path / 'data')
  assert prepare.main(['folder', f'--source={src}', f'--out={out}', '--name=mine',
                       '--val_fraction=0.3']) == 0
  assert 'prepared' in capsys.readouterr().out
  train, val = _read_all('mine', 'train', out), _read_all('mine', 'val', out)
  assert sorted(list(train) + list(val)) == sorted(expected) and train and val
  for name, sample in {**train, **val}.items():
    _assert_sample(sample, *expected[name])
  info = datasets.dataset_info('mine', out)
  assert info.classes == ('bg', 'cat', 'tree') and info.palette == tuple(palette)
  assert info.num_classes == 3


def test_folder_split_folders_and_classes_txt(tmp_path):
  rng = np.random.default_rng(5)
  src = tmp_path / 'mine'
  _write(str(src / 'classes.txt'), b'background\ntraffic light 250 170 30\nsky 70 130 180\n')
  expected = {}
  for split in ('train', 'val', 'test'):
    img, label = _image(rng), rng.choice([0, 1, 2, 255], (H, W)).astype(np.uint8)
    _write(str(src / 'images' / split / 'a.jpg'), _jpg(img))
    _write(str(src / 'masks' / split / 'a.png'), _png(label))
    expected[split] = (cv2.imread(str(src / 'images' / split / 'a.jpg')), label)
  out = str(tmp_path / 'data')
  prepare.prepare('folder', str(src), out)
  for split, (img, label) in expected.items():
    _assert_sample(_read_all('folder', split, out)['a'], img, label)
  info = datasets.dataset_info('folder', out)
  assert info.classes == ('background', 'traffic light', 'sky')
  assert info.palette[1:] == ((250, 170, 30), (70, 130, 180))


# --- bad input --------------------------------------------------------------------------------

def _fake_ade(tmp_path, n=3):
  rng = np.random.default_rng(6)
  root = tmp_path / 'ADEChallengeData2016'
  for split in ('training', 'validation'):
    for k in range(n):
      _write(str(root / 'images' / split / f'ADE_{k}.jpg'), _jpg(_image(rng)))
      _write(str(root / 'annotations' / split / f'ADE_{k}.png'),
             _png(rng.integers(0, 151, (H, W), dtype=np.uint8)))
  return root


def test_label_out_of_range_names_the_file_and_writes_nothing(tmp_path):
  root = _fake_ade(tmp_path)
  bad = root / 'annotations' / 'training' / 'ADE_2.png'
  _write(str(bad), _png(np.full((H, W), 151, np.uint8)))  # ADE's raw labels stop at 150
  out = str(tmp_path / 'data')
  with pytest.raises(DataError) as e:
    prepare.prepare('ade20k', str(root), out)
  assert str(e.value) == (f'{bad} (image {root / "images" / "training" / "ADE_2.jpg"}): label '
                          'has values [151] outside 0..150 and ignore 255')
  _nothing_written(out, 'ade20k')


def test_size_mismatch(tmp_path):
  root = _fake_ade(tmp_path)
  _write(str(root / 'annotations' / 'validation' / 'ADE_1.png'), _png(np.zeros((H, W + 1),
                                                                              np.uint8)))
  out = str(tmp_path / 'data')
  with pytest.raises(DataError, match=r'ADE_1\.png \(image .*ADE_1\.jpg\): size mismatch: '
                                      r'image is 47x33 \(WxH\) but its label is 48x33$'):
    prepare.prepare('ade20k', str(root), out)
  _nothing_written(out, 'ade20k')


def test_unreadable_image_via_cli(tmp_path, capsys):
  root = _fake_ade(tmp_path)
  _write(str(root / 'images' / 'training' / 'ADE_1.jpg'), b'not a jpeg')
  out = str(tmp_path / 'data')
  assert prepare.main(['ade20k', f'--source={root}', f'--out={out}']) == 1
  err = capsys.readouterr().err
  assert err.endswith(f'\nerror: {root / "images" / "training" / "ADE_1.jpg"}: unreadable image\n')
  _nothing_written(out, 'ade20k')


def test_missing_label_and_missing_source(tmp_path):
  root = _fake_ade(tmp_path)
  os.remove(root / 'annotations' / 'training' / 'ADE_0.png')
  with pytest.raises(DataError, match=r'ADE_0\.jpg has no label'):
    prepare.prepare('ade20k', str(root), str(tmp_path / 'data'))
  with pytest.raises(DataError, match='needs --source'):
    prepare.prepare('cityscapes', None, str(tmp_path / 'data'))
  with pytest.raises(DataError, match='does not exist'):
    prepare.prepare('cityscapes', str(tmp_path / 'nowhere'), str(tmp_path / 'data'))


def test_missing_dataset_error_gives_the_prepare_command(tmp_path, monkeypatch):
  monkeypatch.setenv('JSEG_DATA', str(tmp_path / 'jd'))
  with pytest.raises(FileNotFoundError) as e:
    datasets.open_split('cityscapes', 'train')
  assert str(e.value) == (f'cityscapes is not prepared in {tmp_path / "jd"}: run '
                          'python -m jseg.data.prepare cityscapes --source=/path/to/cityscapes')
  with pytest.raises(FileNotFoundError, match=r'prepare synthetic --out=/elsewhere$'):
    datasets.open_split('synthetic', 'val', '/elsewhere')


def test_overwrite_and_stale_temp_dirs(tmp_path):
  out = tmp_path / 'data'
  stale = out / '.synthetic.tmp-4194999-abc'  # a killed prepare's (no such process)
  os.makedirs(stale / 'synthetic')
  small = {'train': 3, 'val': 2}
  prepare.prepare('synthetic', None, str(out), num_samples=small)
  assert not stale.exists()
  with pytest.raises(DataError, match='already prepared'):
    prepare.prepare('synthetic', None, str(out), num_samples=small)
  prepare.prepare('synthetic', None, str(out), overwrite=True, num_samples={'train': 4, 'val': 1})
  assert len(datasets.open_split('synthetic', 'train', str(out))) == 4
  with pytest.raises(ValueError, match="no split 'test'"):
    datasets.open_split('synthetic', 'test', str(out))
  assert sorted(os.listdir(out)) == ['synthetic']


def test_killed_prepare_leaves_no_data_set(tmp_path):
  out = tmp_path / 'data'
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  proc = subprocess.Popen([sys.executable, '-m', 'jseg.data.prepare', 'synthetic', f'--out={out}'],
                          cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    deadline = time.time() + 60
    while not (out.is_dir() and any(e.startswith('.synthetic.tmp') for e in os.listdir(out))):
      assert proc.poll() is None and time.time() < deadline, 'prepare did not start writing'
      time.sleep(0.05)
    time.sleep(0.5)
  finally:
    proc.kill()
    proc.wait()
  assert not (out / 'synthetic').exists()
  with pytest.raises(FileNotFoundError, match='not prepared'):
    datasets.open_split('synthetic', 'train', str(out))


# --- synthetic --------------------------------------------------------------------------------

def test_synthetic_prepared_equals_generated(tmp_path):
  out = str(tmp_path / 'data')
  prepare.prepare('synthetic', None, out, num_samples={'train': 5, 'val': 3})
  src = datasets.open_split('synthetic', 'val', out)
  assert len(src) == 3
  for i in range(3):
    img, label = synthetic.generate('val', i)
    np.testing.assert_array_equal(src[i]['img'], img)
    np.testing.assert_array_equal(src[i]['gt_seg_map'], label)
    assert src[i]['name'] == f'val_{i:05d}'
  img2, _ = synthetic.generate('val', 0)
  np.testing.assert_array_equal(src[0]['img'], img2)  # deterministic


def _miou(pred, label, num_classes):
  ious = []
  for c in range(num_classes):
    union = ((pred == c) | (label == c)).sum()
    if union:
      ious.append(((pred == c) & (label == c)).sum() / union)
  return 100 * float(np.mean(ious))


def test_synthetic_colour_does_not_give_the_class():
  """A per-pixel colour classifier (majority class per quantised RGB) fails on val."""
  n = len(synthetic.CLASSES)
  train = [synthetic.generate('train', i) for i in range(400)]
  val = [synthetic.generate('val', i) for i in range(100)]

  def bins(imgs):
    q = np.stack(imgs).astype(np.int64) // 32  # 8 levels a channel
    return (q[..., 0] * 64 + q[..., 1] * 8 + q[..., 2]).ravel()

  counts = np.zeros((512, n), np.int64)
  np.add.at(counts, (bins([x for x, _ in train]), np.stack([y for _, y in train]).ravel()), 1)
  val_labels = np.stack([y for _, y in val]).ravel()
  pred = counts.argmax(1)[bins([x for x, _ in val])]
  assert set(np.unique(val_labels)) == set(range(n))
  assert _miou(pred, val_labels, n) <= 30
  # Shape classes hold a fair share of the pixels: the task is not "all background".
  assert 0.15 <= (val_labels > 0).mean() <= 0.45


def test_dataset_info_matches_configs():
  for name in ('cityscapes', 'ade20k', 'voc12aug', 'synthetic'):
    info = datasets.dataset_info(name)
    assert info.num_classes == jconfig.DATASETS[name][0] == len(info.palette)
    assert info.reduce_zero_label == (name == 'ade20k')
  cfg = jconfig.load('configs/fcn.py:r18-d8_64x64_2k_synthetic')
  assert cfg.data.num_classes == 6 and tuple(cfg.data.crop_size) == (64, 64)
