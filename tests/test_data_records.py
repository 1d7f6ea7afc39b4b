"""Prepared records read back: a record modified or corrupted after prepare is named by the
reader (raw labels checked before reduce_zero_label), the loader raises it where the batch is
taken, and the device normalization and worker processes give the host pipeline's batches."""
import contextlib
import os
import shutil

import jax
import numpy as np
import pytest

from jseg import config as jconfig
from jseg import train
from jseg.data import builder, datasets, loader, prepare, transforms
from jseg.data.sources import DataError, encode_npy
from test_data import H, W, _fake_ade, _png


@pytest.fixture(scope='module')
def prepared_synthetic(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('synthetic'))
  prepare.prepare('synthetic', data_dir=out, num_samples={'train': 4, 'val': 2}, size=40)
  return out


def _copy(data_dir, tmp_path) -> str:
  shutil.copytree(data_dir, tmp_path / 'data')
  return str(tmp_path / 'data')


def _rewrite_record(data_dir, name, split, index, record: bytes = None, **fields):
  """Replaces record ``index`` of a prepared split: by ``record``, or by itself with ``fields``."""
  from array_record.python.array_record_module import ArrayRecordReader, ArrayRecordWriter
  path = os.path.join(builder.dataset_dir(data_dir, name),
                      f'{name}-{split}.array_record-00000-of-00001')
  reader = ArrayRecordReader(path)
  records = reader.read_all()
  reader.close()
  if record is None:
    features = builder._features()
    record = features.serialize_example(
        {**features.deserialize_example_np(records[index]), **fields})
  records[index] = record
  writer = ArrayRecordWriter(path, 'group_size:1')
  for r in records:
    writer.write(r)
  writer.close()


def _label_png(values, shape=(40, 40)):
  label = np.zeros(shape, np.uint8)
  label.flat[:len(values)] = values
  return _png(label)


@pytest.mark.parametrize('change, problem', [
    (dict(image=b'not an image'), 'unreadable image'),
    (dict(label=b''), 'unreadable label'),
    (dict(label=_label_png([5, 255, 6, 200, 6])),
     'label has values [6, 200] outside 0..5 and ignore 255'),
    (dict(label=_label_png([], (40, 41))),
     'size mismatch: image is 40x40 (WxH) but its label is 41x40'),
    (dict(label=_png(np.zeros((40, 40, 3), np.uint8))),
     'label has shape (40, 40, 3): expected a single-channel map of class ids'),
    # 'raw' storage (.npy bytes)
    (dict(image=encode_npy(np.zeros((40, 40, 3), np.uint8))[:-1]), 'unreadable image'),
    (dict(image=encode_npy(np.zeros((40, 40), np.uint8))), 'unreadable image'),
    (dict(image=encode_npy(np.zeros((40, 40, 3), np.float32))), 'unreadable image'),
    (dict(label=encode_npy(np.zeros((40, 40), np.uint8))[:-1]), 'unreadable label'),
    (dict(label=encode_npy(np.full((40, 40), 9, np.uint8))),
     'label has values [9] outside 0..5 and ignore 255'),
])
def test_corrupted_record_names_the_record(prepared_synthetic, tmp_path, change, problem):
  out = _copy(prepared_synthetic, tmp_path)
  _rewrite_record(out, 'synthetic', 'train', 2, **change)
  src = datasets.open_split('synthetic', 'train', out)
  with pytest.raises(DataError) as e:
    src[2]
  assert str(e.value) == f'synthetic train record 2 (train_00002): {problem}'
  assert [src[i]['name'] for i in (0, 1, 3)] == ['train_00000', 'train_00001', 'train_00003']


def test_unparsable_record_names_the_record(prepared_synthetic, tmp_path):
  out = _copy(prepared_synthetic, tmp_path)
  _rewrite_record(out, 'synthetic', 'val', 1, record=b'garbage')
  with pytest.raises(DataError, match=r'^synthetic val record 1: does not parse \(.*corrupt'):
    datasets.open_split('synthetic', 'val', out)[1]


def _synthetic_config(batch_size):
  config = jconfig.load('configs/fcn.py:r18-d8_64x64_2k_synthetic')
  config.train.batch_size = batch_size
  return config


@pytest.mark.parametrize('workers', [0, 2])
def test_train_batches_raise_the_record_error_in_the_main_thread(prepared_synthetic, tmp_path,
                                                                 workers):
  """The pipeline runs in grain's threads or worker processes: the error reaches the caller,
  type and message intact."""
  out = _copy(prepared_synthetic, tmp_path)
  config = _synthetic_config(batch_size=2)
  config.data.worker_processes = workers
  bad = int(loader._permutation(config.seed, 0, 4)[2])  # read by step 1
  _rewrite_record(out, 'synthetic', 'train', bad, label=_label_png([40, 77]))
  with contextlib.closing(loader.train_batches(config, data_dir=out, num_threads=2)) as batches:
    images, labels, sizes = next(batches)
    assert images.shape == (2, 64, 64, 3) and images.dtype == np.uint8
    assert labels.shape == (2, 64, 64) and sizes.tolist() == [[64, 64]] * 2
    with pytest.raises(DataError) as e:
      next(batches)
  assert str(e.value) == (f'synthetic train record {bad} (train_0000{bad}): label has values '
                          '[40, 77] outside 0..5 and ignore 255')


def test_device_normalization_is_the_host_pipeline_bit_for_bit(prepared_synthetic):
  """The loader's uint8 batches, normalized as the train step does it on the device, are bit for
  bit what the host's Normalize + Pad made (float32 RGB (x - mean) / std, 0 in the padding)."""
  config = _synthetic_config(batch_size=4)
  config.data.update(ratio_range=(0.5, 2.0), crop_size=(56, 72))  # some crops padded, some not
  source = datasets.open_split('synthetic', 'train', prepared_synthetic)
  normalize = jax.jit(lambda images, sizes: train.normalize_images(images, sizes, config.data))
  sizes_seen = set()
  for step in range(3):
    want, want_labels, _ = loader.local_batch(source, transforms.train_pipeline(config.data),
                                              config.seed, step, 4)
    images, labels, sizes = loader.local_batch(
        source, transforms.train_pipeline(config.data, normalize=False), config.seed, step, 4)
    assert images.dtype == labels.dtype == np.uint8 and sizes.dtype == np.int32
    got = np.asarray(normalize(images, sizes))
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    np.testing.assert_array_equal(labels, want_labels)
    sizes_seen |= {tuple(s) for s in sizes}
  assert (56, 72) in sizes_seen and any(h < 56 and w < 72 for h, w in sizes_seen)


def test_worker_processes_make_the_threads_batches(prepared_synthetic):
  """data.worker_processes=2: grain's worker processes give the threads' batches in step order,
  from any start step."""
  config = _synthetic_config(batch_size=3)
  threads = loader.train_batches(config, start_step=1, data_dir=prepared_synthetic, num_threads=2)
  want = [next(threads) for _ in range(4)]
  threads.close()
  config.data.worker_processes = 2
  with contextlib.closing(loader.train_batches(config, start_step=1,
                                               data_dir=prepared_synthetic)) as processes:
    for batch in want:
      jax.tree_util.tree_map(np.testing.assert_array_equal, next(processes), batch)
  config.data.worker_processes = -1
  with pytest.raises(ValueError, match=r'data.worker_processes=-1: expected 0 \(threads\)'):
    loader.train_batches(config, data_dir=prepared_synthetic)


def test_eval_samples_raise_the_record_error(prepared_synthetic, tmp_path):
  out = _copy(prepared_synthetic, tmp_path)
  _rewrite_record(out, 'synthetic', 'val', 1, image=b'\x89PNG truncated')
  samples = loader.eval_samples(_synthetic_config(1), data_dir=out, progress=False)
  assert next(samples)[1].shape == (40, 40)
  with pytest.raises(DataError) as e:
    next(samples)
  assert str(e.value) == 'synthetic val record 1 (val_00001): unreadable image'


def test_raw_storage_reads_as_the_files_do(tmp_path):
  """``--storage=raw`` (decoded pixels as .npy): every sample, and the train pipeline's output
  for the same draws, equal the encoded data set's bit for bit (JPEG images, as ADE20K has)."""
  source = str(_fake_ade(tmp_path))
  encoded, raw = str(tmp_path / 'encoded'), str(tmp_path / 'raw')
  prepare.prepare('ade20k', source, encoded)
  assert prepare.main(['ade20k', f'--source={source}', f'--out={raw}', '--storage=raw']) == 0
  assert datasets._tfds_builder('ade20k', raw).info.metadata['storage'] == 'raw'
  config = jconfig.load('configs/fcn.py:r50-d8_512x512_80k_ade20k')
  config.data.crop_size = (24, 32)
  pipeline = transforms.train_pipeline(config.data, normalize=False)
  for split in ('train', 'val'):
    a, b = datasets.open_split('ade20k', split, encoded), datasets.open_split('ade20k', split, raw)
    assert len(a) == len(b) == 3
    for i in range(3):
      x, y = a[i], b[i]
      assert x['name'] == y['name'] and y['img'].dtype == y['gt_seg_map'].dtype == np.uint8
      np.testing.assert_array_equal(x['img'], y['img'])
      np.testing.assert_array_equal(x['gt_seg_map'], y['gt_seg_map'])
      x, y = (pipeline(s, np.random.default_rng(i)) for s in (x, y))
      np.testing.assert_array_equal(x['img'], y['img'])
      np.testing.assert_array_equal(x['gt_seg_map'], y['gt_seg_map'])
  with pytest.raises(DataError, match=r"^storage 'png': expected one of encoded, raw$"):
    prepare.prepare('ade20k', source, str(tmp_path / 'x'), storage='png')


def test_reduce_zero_label_data_set_checks_raw_labels(tmp_path):
  """ADE20K's raw labels run 0..150 (0 becomes 255, the others class - 1): 150 is valid."""
  out = str(tmp_path / 'data')
  prepare.prepare('ade20k', str(_fake_ade(tmp_path, n=1)), out)
  raw = np.zeros((H, W), np.uint8)
  raw[0, :3] = (150, 255, 1)
  _rewrite_record(out, 'ade20k', 'train', 0, label=_png(raw))
  np.testing.assert_array_equal(datasets.open_split('ade20k', 'train', out)[0]['gt_seg_map'], raw)
  raw[1, 0] = 151
  _rewrite_record(out, 'ade20k', 'train', 0, label=_png(raw))
  with pytest.raises(DataError) as e:
    datasets.open_split('ade20k', 'train', out)[0]
  assert str(e.value) == ('ade20k train record 0 (ADE_0): label has values [151] outside 0..150 '
                          'and ignore 255')
