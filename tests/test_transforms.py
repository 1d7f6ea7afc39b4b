"""jseg.data.transforms against MMSeg 1.2.2's / mmcv 2.1's transforms on odd-sized images.

Each deterministic core is compared with MMSeg's transform given the same draws: a
``Script`` replays a fixed sequence of random values both as jseg's ``rng`` and in place
of MMSeg's ``np.random`` calls. The whole pipelines (with SegDataPreProcessor's
normalize + pad) are compared end to end with MMSeg seeded through ``np.random.seed``.
"""

import cv2
import numpy as np
import pytest
import torch

import mmseg_ref  # noqa: F401  (installs the mmcv.ops stand-in before any mmseg import)
import mmseg.datasets.transforms.transforms as mmseg_tf
from mmcv.transforms import LoadImageFromFile
from mmseg.datasets.transforms import (LoadAnnotations, PackSegInputs, PhotoMetricDistortion,
                                       RandomCrop, RandomFlip, Resize)
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import TRANSFORMS

from jseg.data import transforms as T

MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)
IMG_SCALE = (121, 61)  # (w, h) like MMSeg's (2048, 1024)
CROP = (37, 53)  # (h, w)


class Script:
  """Replays fixed random values; usable as jseg's rng and as MMSeg's np.random."""

  def __init__(self, values=()):
    self.values = list(values)
    self.i = 0

  def _next(self):
    v = self.values[self.i]
    self.i += 1
    return v

  def randint(self, low, high=None, size=None):
    v = self._next()
    lo, hi = (0, low) if high is None else (low, high)
    assert lo <= v < hi, (v, lo, hi)
    return v

  def random_sample(self, size=None):
    return self._next()

  random = random_sample

  def uniform(self, low=0.0, high=1.0, size=None):
    v = self._next()
    assert low <= v <= high
    return v

  def choice(self, a, size=None, replace=True, p=None):
    i = self._next()
    return i if isinstance(a, int) else a[i]

  def done(self):
    return self.i == len(self.values)


class Recorder(Script):
  """Draws from a numpy Generator (as jseg's rng) and records what it drew."""

  def __init__(self, seed):
    super().__init__()
    self.gen = np.random.default_rng(seed)

  def randint(self, low, high=None, size=None):
    v = int(self.gen.integers(low, high))
    self.values.append(v)
    return v

  def random_sample(self, size=None):
    v = float(self.gen.random())
    self.values.append(v)
    return v

  random = random_sample

  def uniform(self, low=0.0, high=1.0, size=None):
    v = float(self.gen.uniform(low, high))
    self.values.append(v)
    return v

  def choice(self, a, size=None, replace=True, p=None):
    v = int(self.gen.choice(a, p=p))
    self.values.append(v)
    return v

  def replay(self):
    return Script(self.values)


def _patch_np_random(monkeypatch, script):
  for name in ('randint', 'random_sample', 'uniform', 'choice'):
    monkeypatch.setattr(np.random, name, getattr(script, name))
  monkeypatch.setattr(mmseg_tf, 'random', script)  # PhotoMetricDistortion's `from numpy import random`


def _image(rng, h, w):
  return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _label(rng, h, w, num_classes=6, dominant=True):
  """A label map: one dominant class with a few rectangles of others and an ignored band."""
  seg = np.full((h, w), 1 if dominant else 0, np.uint8)
  if not dominant:
    seg[:] = rng.integers(0, num_classes, (h, w))
  for _ in range(4):
    y, x = rng.integers(0, h), rng.integers(0, w)
    seg[y:y + rng.integers(3, h // 2), x:x + rng.integers(3, w // 2)] = rng.integers(0, num_classes)
  seg[:, : w // 9] = 255
  seg[h - 3:, :] = 0
  return seg


def _results(img, seg):
  return dict(img=img.copy(), gt_seg_map=seg.copy(), seg_fields=['gt_seg_map'],
              img_shape=img.shape[:2], ori_shape=img.shape[:2])


@pytest.fixture(scope='module')
def sample():
  rng = np.random.default_rng(0)
  return _image(rng, 67, 93), _label(rng, 67, 93)


# ----------------------------------------------------------------------------- loading
def test_reduce_zero_label(tmp_path):
  rng = np.random.default_rng(1)
  seg = rng.integers(0, 256, (31, 47)).astype(np.uint8)
  seg[0, :4] = (0, 1, 254, 255)
  path = str(tmp_path / 'seg.png')
  cv2.imwrite(path, seg)
  ref = LoadAnnotations(reduce_zero_label=True)(
      dict(seg_map_path=path, reduce_zero_label=True, seg_fields=[]))['gt_seg_map']
  out = T.reduce_zero_label(seg)
  assert out.dtype == np.uint8
  np.testing.assert_array_equal(out, ref)
  np.testing.assert_array_equal(out[0, :4], (255, 0, 253, 255))


# ----------------------------------------------------------------------------- resize
@pytest.mark.parametrize('shape', [(67, 93), (93, 67), (50, 121)])
def test_resize_matches_mmseg(shape):
  rng = np.random.default_rng(2)
  img, seg = _image(rng, *shape), _label(rng, *shape)
  for ratio_seed in range(4):
    rec = Recorder(ratio_seed)
    ours = T.RandomResize(IMG_SCALE, (0.5, 2.0))
    scale = ours.sample({}, rec)
    out = ours.apply(_results(img, seg), scale)
    # mmcv's RandomResize sampling with the same draw gives the same scale.
    mm = TRANSFORMS.build(dict(type='RandomResize', scale=IMG_SCALE, ratio_range=(0.5, 2.0),
                               keep_ratio=True))
    with pytest.MonkeyPatch.context() as mp:
      _patch_np_random(mp, rec.replay())
      ref = mm(_results(img, seg))
    assert ref['scale'] == scale
    ref2 = Resize(scale=scale, keep_ratio=True)(_results(img, seg))
    for r in (ref, ref2):
      np.testing.assert_array_equal(out['img'], r['img'])
      np.testing.assert_array_equal(out['gt_seg_map'], r['gt_seg_map'])
      assert out['img_shape'] == r['img_shape']
      np.testing.assert_allclose(out['scale_factor'], r['scale_factor'])


def test_test_resize_keeps_label(tmp_path, sample):
  img, seg = sample
  img_path, seg_path = str(tmp_path / 'img.png'), str(tmp_path / 'seg.png')
  cv2.imwrite(img_path, img)
  cv2.imwrite(seg_path, seg)
  for rzl in (False, True):
    ref = LoadImageFromFile()(dict(img_path=img_path))
    ref = Resize(scale=IMG_SCALE, keep_ratio=True)(ref)
    ref.update(seg_map_path=seg_path, reduce_zero_label=rzl, seg_fields=[])
    ref = LoadAnnotations()(ref)
    packed = PackSegInputs()(ref)
    pre = SegDataPreProcessor(mean=MEAN, std=STD, bgr_to_rgb=True, pad_val=0, seg_pad_val=255)
    ref_in = pre(dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']]),
                 training=False)['inputs'][0]
    cfg = dict(test_img_scale=IMG_SCALE, mean=MEAN, std=STD, reduce_zero_label=rzl)
    out = T.test_pipeline(cfg)(dict(img=cv2.imread(img_path), gt_seg_map=seg.copy()))
    assert out['img'].dtype == np.float32 and out['ori_shape'] == img.shape[:2]
    np.testing.assert_array_equal(out['img'], ref_in.permute(1, 2, 0).numpy())
    np.testing.assert_array_equal(out['gt_seg_map'], ref['gt_seg_map'])
    assert out['gt_seg_map'].shape == img.shape[:2]


# ----------------------------------------------------------------------------- crop
@pytest.mark.parametrize('cat_max_ratio', [0.75, 1.0])
def test_random_crop_matches_mmseg(sample, cat_max_ratio):
  img, seg = sample
  ours = T.RandomCrop(CROP, cat_max_ratio=cat_max_ratio)
  draws = []
  for seed in range(30):
    rec = Recorder(seed)
    box = ours.sample(_results(img, seg), rec)
    draws.append(len(rec.values) // 2)
    out = ours.apply(_results(img, seg), box)
    mm = RandomCrop(CROP, cat_max_ratio=cat_max_ratio)
    with pytest.MonkeyPatch.context() as mp:
      script = rec.replay()
      _patch_np_random(mp, script)
      ref = mm(_results(img, seg))
      assert script.done()  # MMSeg drew exactly as many boxes
    np.testing.assert_array_equal(out['img'], ref['img'])
    np.testing.assert_array_equal(out['gt_seg_map'], ref['gt_seg_map'])
    assert out['img'].shape[:2] == CROP
    # the acceptance rule: the kept box passes, or all 11 draws were used.
    if cat_max_ratio < 1:
      assert ours.accept(out['gt_seg_map']) or draws[-1] == 11
  if cat_max_ratio < 1:
    assert max(draws) > 1  # re-draws were exercised
  else:
    assert set(draws) == {1}


def test_crop_accept_rule():
  c = T.RandomCrop((4, 4), cat_max_ratio=0.75)
  seg = np.zeros((4, 4), np.uint8)
  assert not c.accept(seg)  # one class
  seg[0, :4] = 1  # 12 / 16 = 0.75: not below the ratio
  assert not c.accept(seg)
  seg[1, 0] = 1  # 11 / 16
  assert c.accept(seg)
  seg[2:, :] = 255  # ignored pixels are not counted: 3 zeros / 8 ones... ratio 5/8
  assert c.accept(seg)
  seg[:] = 255
  seg[0, 0] = 1
  assert not c.accept(seg)


@pytest.mark.parametrize('shape', [(1, 1), (67, 93), (512, 1024)])
def test_label_counts_equal_bincount(shape):
  seg = np.random.default_rng(shape[1]).integers(0, 256, shape).astype(np.uint8)
  seg[0, 0] = 255
  for view in (seg, seg[::-1, ::-2], seg[:, :1]):  # flipped, strided, one column
    np.testing.assert_array_equal(T.label_counts(view), np.bincount(view.ravel(), minlength=256))


def test_crop_smaller_image_than_crop():
  rng = np.random.default_rng(3)
  img, seg = _image(rng, 20, 71), _label(rng, 20, 71)
  ours = T.RandomCrop(CROP, cat_max_ratio=0.75)
  rec = Recorder(0)
  out = ours.apply(_results(img, seg), ours.sample(_results(img, seg), rec))
  with pytest.MonkeyPatch.context() as mp:
    _patch_np_random(mp, rec.replay())
    ref = RandomCrop(CROP, cat_max_ratio=0.75)(_results(img, seg))
  np.testing.assert_array_equal(out['img'], ref['img'])
  assert out['img'].shape[:2] == (20, CROP[1])


# ----------------------------------------------------------------------------- flip
def test_random_flip_matches_mmseg(sample):
  img, seg = sample
  seen = set()
  for seed in range(8):
    rec = Recorder(seed)
    ours = T.RandomFlip(0.5)
    flip = ours.sample({}, rec)
    seen.add(flip)
    out = ours.apply(_results(img, seg), flip)
    with pytest.MonkeyPatch.context() as mp:
      _patch_np_random(mp, rec.replay())
      ref = RandomFlip(prob=0.5)(_results(img, seg))
    assert ref['flip'] == flip == out['flip']
    np.testing.assert_array_equal(out['img'], ref['img'])
    np.testing.assert_array_equal(out['gt_seg_map'], ref['gt_seg_map'])
  assert seen == {True, False}


def test_random_flip_rejects_an_unknown_direction():
  with pytest.raises(ValueError) as e:
    T.RandomFlip(0.5, direction='diagonal')
  assert str(e.value) == "RandomFlip direction='diagonal': expected 'horizontal' or 'vertical'"


# ----------------------------------------------------------------------------- photometric
def _pmd_script(brightness, mode, contrast, saturation, hue):
  """MMSeg's draw sequence for the given parameters (None: the step is skipped)."""
  s = [1, brightness] if brightness is not None else [0]
  s.append(mode)
  c = [1, contrast] if contrast is not None else [0]
  if mode == 1:
    s += c
  s += [1, saturation] if saturation is not None else [0]
  s += [1, hue] if hue is not None else [0]
  if mode == 0:
    s += c
  return s


@pytest.mark.parametrize('params', [
    (31.7, 0, 1.43, 0.61, -18),
    (-32.0, 1, 0.5, 1.5, 17),
    (None, 0, None, None, None),
    (None, 1, 1.21, None, 5),
    (12.25, 0, None, 1.37, None),
    (-7.5, 1, None, 0.52, -3),
])
def test_photometric_fixed_params(sample, params):
  img, _ = sample
  script = _pmd_script(*params)
  ours = T.PhotoMetricDistortion()
  p = ours.sample({}, Script(script))
  assert (p['brightness'], p['mode'], p['contrast'], p['saturation'], p['hue']) == params
  out = ours.apply_img(img.copy(), p)
  with pytest.MonkeyPatch.context() as mp:
    s = Script(script)
    _patch_np_random(mp, s)
    ref = PhotoMetricDistortion()(dict(img=img.copy()))['img']
    assert s.done()
  assert out.dtype == np.uint8
  np.testing.assert_array_equal(out, ref)


def test_photometric_sampled(sample):
  img, _ = sample
  ours = T.PhotoMetricDistortion()
  for seed in range(12):
    rec = Recorder(seed)
    out = ours.apply_img(img.copy(), ours.sample({}, rec))
    with pytest.MonkeyPatch.context() as mp:
      s = rec.replay()
      _patch_np_random(mp, s)
      ref = PhotoMetricDistortion()(dict(img=img.copy()))['img']
      assert s.done()
    np.testing.assert_array_equal(out, ref)


# ----------------------------------------------------------------------------- pipelines
def _mmseg_train(img_path, seg_path, rzl, seed):
  np.random.seed(seed)
  pipeline = [
      LoadImageFromFile(), LoadAnnotations(),
      TRANSFORMS.build(dict(type='RandomResize', scale=IMG_SCALE, ratio_range=(0.5, 2.0),
                            keep_ratio=True)),
      RandomCrop(CROP, cat_max_ratio=0.75), RandomFlip(prob=0.5), PhotoMetricDistortion(),
      PackSegInputs()]
  r = dict(img_path=img_path, seg_map_path=seg_path, reduce_zero_label=rzl, seg_fields=[])
  for t in pipeline:
    r = t(r)
  pre = SegDataPreProcessor(mean=MEAN, std=STD, size=CROP, bgr_to_rgb=True, pad_val=0,
                            seg_pad_val=255)
  out = pre(dict(inputs=[r['inputs']], data_samples=[r['data_samples']]), training=True)
  return (out['inputs'][0].permute(1, 2, 0).numpy(),
          out['data_samples'][0].gt_sem_seg.data[0].numpy())


@pytest.mark.parametrize('rzl', [False, True])
def test_train_pipeline_matches_mmseg_seeded(tmp_path, rzl):
  """RandomState(seed) replays MMSeg's np.random.seed(seed) run of the whole pipeline."""
  rng = np.random.default_rng(4)
  torch.manual_seed(0)
  cfg = dict(crop_size=CROP, img_scale=IMG_SCALE, ratio_range=(0.5, 2.0), cat_max_ratio=0.75,
             mean=MEAN, std=STD, ignore_index=255, reduce_zero_label=rzl)
  pipe = T.train_pipeline(cfg)
  for k, shape in enumerate([(67, 93), (45, 111), (20, 110)]):
    img, seg = _image(rng, *shape), _label(rng, *shape)
    img_path, seg_path = str(tmp_path / f'i{k}.png'), str(tmp_path / f's{k}.png')
    cv2.imwrite(img_path, img)
    cv2.imwrite(seg_path, seg)
    padded = False
    for seed in range(8):
      ref_img, ref_seg = _mmseg_train(img_path, seg_path, rzl, seed)
      out = pipe(dict(img=img, gt_seg_map=seg), np.random.RandomState(seed))
      assert out['img'].dtype == np.float32 and out['img'].shape == CROP + (3,)
      assert out['gt_seg_map'].dtype == np.uint8 and out['gt_seg_map'].shape == CROP
      np.testing.assert_array_equal(out['img'], ref_img)
      np.testing.assert_array_equal(out['gt_seg_map'], ref_seg.astype(np.uint8))
      padded |= bool((out['gt_seg_map'][-1] == 255).all() and (out['img'][-1] == 0).all())
    if shape == (20, 110):  # short output: the crop is padded
      assert padded


def test_train_pipeline_reproducible_with_generator(sample):
  img, seg = sample
  cfg = dict(crop_size=CROP, img_scale=IMG_SCALE, ratio_range=(0.5, 2.0), cat_max_ratio=0.75,
             mean=MEAN, std=STD, ignore_index=255, reduce_zero_label=False)
  pipe = T.train_pipeline(cfg)
  record = dict(img=img, gt_seg_map=seg)
  a = pipe(record, np.random.default_rng((0, 1, 2)))
  b = pipe(record, np.random.default_rng((0, 1, 2)))
  c = pipe(record, np.random.default_rng((0, 1, 3)))
  np.testing.assert_array_equal(a['img'], b['img'])
  np.testing.assert_array_equal(a['gt_seg_map'], b['gt_seg_map'])
  assert not np.array_equal(a['img'], c['img'])
  np.testing.assert_array_equal(record['img'], img)  # the record is not modified
  np.testing.assert_array_equal(record['gt_seg_map'], seg)
  # RGB records: input_rgb=True gives the same result as the BGR record.
  rgb = T.train_pipeline(cfg, input_rgb=True)(dict(img=img[..., ::-1].copy(), gt_seg_map=seg),
                                              np.random.default_rng((0, 1, 2)))
  np.testing.assert_array_equal(rgb['img'], a['img'])


def test_pipelines_from_config():
  from jseg.config import recipe, variants
  valid = variants(['r50-d8'])
  rng = np.random.default_rng(5)
  for name in ('r50-d8_769x769_40k_cityscapes', 'r50-d8_512x512_80k_ade20k'):
    data = recipe('fcn', name, valid).data
    img, seg = _image(rng, 97, 130), _label(rng, 97, 130)
    out = T.train_pipeline(data)(dict(img=img, gt_seg_map=seg), np.random.default_rng(0))
    assert out['img'].shape == tuple(data.crop_size) + (3,)
    assert out['gt_seg_map'].shape == tuple(data.crop_size)
    test = T.test_pipeline(data)(dict(img=img, gt_seg_map=seg))
    assert max(test['img'].shape[:2]) == max(data.test_img_scale) or \
        min(test['img'].shape[:2]) == min(data.test_img_scale)
    assert test['gt_seg_map'].shape == seg.shape


@pytest.mark.parametrize('key', ['reduce_zero_label', 'ratio_range', 'cat_max_ratio',
                                 'ignore_index'])
def test_pipelines_need_every_key(key):
  """A missing (e.g. misspelled) key is an error, not a silent default."""
  cfg = dict(crop_size=CROP, img_scale=IMG_SCALE, test_img_scale=IMG_SCALE, ratio_range=(0.5, 2.0),
             cat_max_ratio=0.75, mean=MEAN, std=STD, ignore_index=255, reduce_zero_label=False)
  cfg[key + '_'] = cfg.pop(key)
  with pytest.raises(KeyError, match=key):
    T.train_pipeline(cfg)
  if key == 'reduce_zero_label':
    with pytest.raises(KeyError, match=key):
      T.test_pipeline(cfg)
