"""Slide inference and ms+flip TTA equal MMSeg's; the single-image API and --mode=predict."""
import copy
import os
import subprocess
import sys

import cv2
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import mmseg_ref as ref
import parity
from jseg import apis, checkpoints, inference
from jseg import config as jconfig
from jseg.convert import mmseg_to_jseg
from jseg.models import build_segmentor
from mmcv.transforms import Compose
from mmengine import ConfigDict
from mmengine.dataset import pseudo_collate
from mmseg.apis import inference_model
from mmseg.models.segmentors import SegTTAModel
from mmseg.registry import MODELS

SPEC = 'configs/fcn.py:r18w16-d8_64x64_2k_synthetic'  # quarter-width ResNet-18: fast on a CPU
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _with_test(config, mode, crop=None, stride=None, align_corners=None):
  config = copy.deepcopy(config)
  config.test.mode = mode
  if crop:
    config.test.crop_size, config.test.stride = crop, stride
  if align_corners is not None:
    config.model.decode_head.align_corners = config.model.auxiliary_head.align_corners = (
        align_corners)
  return config


def mmseg_fcn(config, seed=0):
  """MMSeg's FCN with the widths of a jseg config, random weights, its data preprocessor
  and test_cfg, and a ``cfg.test_pipeline`` for ``mmseg.apis.inference_model``."""
  mm = parity.mmseg_fcn(config, seed)
  mm_cfg = ref.mmseg_config(*parity.FCN_R18)
  mm.data_preprocessor = MODELS.build(mm_cfg.model.data_preprocessor)
  mm.test_cfg = ConfigDict(mode=config.test.mode, crop_size=tuple(config.test.crop_size),
                           stride=tuple(config.test.stride))
  mm.cfg = mm_cfg
  mm.cfg.test_pipeline[1].scale = tuple(config.data.img_scale)
  return mm


@pytest.fixture(scope='module', autouse=True)
def one_torch_thread():
  """MMSeg's many small window convs: one thread is many times faster on a busy 2-core CPU."""
  threads = torch.get_num_threads()
  torch.set_num_threads(1)
  yield
  torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def base():
  config = jconfig.load(SPEC)
  mm = mmseg_fcn(config)
  return config, mm, mmseg_to_jseg(mm.state_dict(), config)


@pytest.mark.parametrize('n,h,w,out', [(1, 700, 1000, (700, 1000)),  # 2 x 3 windows, snapped
                                       (2, 300, 450, (331, 497))])   # smaller than the crop
def test_slide_equals_mmseg(base, n, h, w, out):
  config, mm, variables = base
  config = _with_test(config, 'slide', (512, 512), (341, 341))
  mm.test_cfg = ConfigDict(mode='slide', crop_size=(512, 512), stride=(341, 341))
  x = np.random.default_rng(h).standard_normal((n, h, w, 3)).astype(np.float32)
  metas = [dict(ori_shape=out, img_shape=(h, w), pad_shape=(h, w), padding_size=[0] * 4)
           for _ in range(n)]
  with torch.no_grad():
    want_net = ref.nhwc(mm.inference(ref.nchw(x), copy.deepcopy(metas)))
    samples = mm.postprocess_result(mm.inference(ref.nchw(x), copy.deepcopy(metas)),
                                    [_sample(m) for m in metas])
  want = np.stack([s.seg_logits.data.numpy().transpose(1, 2, 0) for s in samples])
  predict = inference.make_predict_fn(build_segmentor(config), config.test, False)
  got_net = np.asarray(predict(variables, jnp.asarray(x), (h, w)))
  err = ref.rel_err(got_net, want_net)
  assert err <= 1e-4, f'slide logits {h}x{w}: rel err {err:.2e}'
  got = np.asarray(predict(variables, jnp.asarray(x), out))
  assert got.shape == want.shape == (n, *out, config.data.num_classes)
  err = ref.rel_err(got, want)
  assert err <= 1e-4, f'slide logits resized to {out}: rel err {err:.2e}'
  print(f'slide {n}x{h}x{w} -> {out}: rel err {err:.2e}')


def _sample(meta):
  from mmseg.structures import SegDataSample
  s = SegDataSample()
  s.set_metainfo(meta)
  return s


def _mmseg_tta(mm, path, ratios):
  """MMSeg's TTA: the Cityscapes config's ``tta_pipeline`` (without LoadAnnotations) with
  ``ratios``, SegTTAModel.test_step; returns (mean softmax (H, W, C), merged labels)."""
  load, tta = copy.deepcopy(ref.mmseg_config(*parity.FCN_R18).tta_pipeline)
  assert [t.scale_factor for t in tta.transforms[0]] == list(inference.MS_RATIOS)
  tta.transforms = [[dict(type='Resize', scale_factor=r, keep_ratio=True) for r in ratios]] + [
      ts for ts in tta.transforms[1:] if ts[0].type != 'LoadAnnotations']
  data = pseudo_collate([Compose([load, tta])(dict(img_path=path))])
  model = SegTTAModel(module=mm)
  views = []
  model.merge_preds = (lambda merge: lambda samples: views.append(samples) or merge(samples))(
      model.merge_preds)
  with torch.no_grad():
    merged = model.test_step(data)
  ((samples,),) = views  # one batch of one image: its views
  assert len(samples) == 2 * len(ratios)
  probs = sum(s.seg_logits.data.softmax(dim=0) for s in samples) / len(samples)
  return probs.numpy().transpose(1, 2, 0), merged[0].pred_sem_seg.data[0].numpy()


@pytest.mark.parametrize('mode,align_corners,ratios,size', [
    ('slide', False, (0.5, 0.75, 1.75), (97, 131)),  # ms + flip, windows of 64 at each scale
    ('whole', True, (1.0,), (75, 101)),                 # flip only
])
def test_tta_equals_mmseg(base, tmp_path, mode, align_corners, ratios, size):
  config, _, _ = base
  config = _with_test(config, mode, (64, 64), (43, 43), align_corners)
  mm = mmseg_fcn(config, seed=1)
  variables = mmseg_to_jseg(mm.state_dict(), config)
  img = np.random.default_rng(2).integers(0, 256, (*size, 3), dtype=np.uint8)
  path = str(tmp_path / 'x.png')
  cv2.imwrite(path, img)
  want, want_labels = _mmseg_tta(mm, path, ratios)
  tta = inference.make_tta_fn(build_segmentor(config), config.test, align_corners)
  got = np.asarray(inference.tta_probs(tta, variables, img, config.data, ratios))[0]
  assert got.shape == want.shape == (*size, config.data.num_classes)
  err = ref.rel_err(got, want)
  assert err <= 1e-4, f'TTA {mode} {ratios}: rel err {err:.2e}'
  assert np.mean(got.argmax(-1) != want_labels) <= 1e-3
  print(f'TTA {mode} ratios={ratios}: rel err {err:.2e}')


@pytest.fixture(scope='module')
def pth(base, tmp_path_factory):
  _, mm, _ = base
  path = str(tmp_path_factory.mktemp('ckpt') / 'fcn.pth')
  torch.save({'state_dict': mm.state_dict(), 'meta': {}}, path)
  return path


@pytest.fixture(scope='module')
def segmentor(pth):
  return apis.init_segmentor(SPEC, pth)


def _picture(h=53, w=78, seed=3):
  yy, xx = np.mgrid[:h, :w]
  img = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) % 256], -1).astype(np.uint8)
  noise = np.random.default_rng(seed).integers(0, 40, img.shape)
  return np.clip(img + noise, 0, 255).astype(np.uint8)


def test_inference_segmentor_equals_mmseg_inference_model(base, segmentor, tmp_path):
  _, mm, _ = base
  mm.test_cfg = ConfigDict(mode='whole')
  img = _picture()
  for ext in ('png', 'jpg'):
    path = str(tmp_path / f'x.{ext}')
    cv2.imwrite(path, img)
    labels = apis.inference_segmentor(segmentor, path)
    assert labels.shape == img.shape[:2] and labels.dtype == np.int32
    with torch.no_grad():
      want = inference_model(mm, path).pred_sem_seg.data[0].numpy()
    assert np.mean(labels != want) <= 1e-3, ext
    picture = apis.show_result(path, labels, out_file=str(tmp_path / f'seg_{ext}.png'),
                               config=segmentor)
    written = cv2.imread(str(tmp_path / f'seg_{ext}.png'))
    assert written.shape == picture.shape == img.shape
  # The data set palette by default; an explicit one wins.
  palette = np.asarray(segmentor.palette)
  assert np.array_equal(apis.show_result(img, labels, opacity=1.0, config=segmentor),
                        palette[labels])
  red = np.tile([[255, 0, 0]], (6, 1))
  assert (apis.show_result(img, labels, palette=red, opacity=1.0)[..., 0] == 255).all()


def test_grayscale_rgba_and_bad_inputs(segmentor, tmp_path):
  img = _picture()
  gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
  bgra = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
  want_gray = apis.inference_segmentor(segmentor, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
  cv2.imwrite(str(tmp_path / 'gray.png'), gray)
  cv2.imwrite(str(tmp_path / 'rgba.png'), bgra)
  assert cv2.imread(str(tmp_path / 'rgba.png'), cv2.IMREAD_UNCHANGED).shape[2] == 4
  for image in (gray, gray[..., None], str(tmp_path / 'gray.png')):
    assert np.array_equal(apis.inference_segmentor(segmentor, image), want_gray)
  want = apis.inference_segmentor(segmentor, img)
  for image in (bgra, str(tmp_path / 'rgba.png')):
    assert np.array_equal(apis.inference_segmentor(segmentor, image), want)
  picture = apis.show_result(str(tmp_path / 'gray.png'), want_gray)
  assert picture.shape == img.shape
  bad = tmp_path / 'notes.png'
  bad.write_text('not an image')
  with pytest.raises(ValueError, match='notes.png'):
    apis.inference_segmentor(segmentor, str(bad))
  with pytest.raises(FileNotFoundError, match='missing.png'):
    apis.inference_segmentor(segmentor, str(tmp_path / 'missing.png'))
  with pytest.raises(ValueError, match='differ in size'):
    apis.show_result(img, want[:-1])


def test_tta_through_the_api(segmentor):
  img = _picture(45, 60)
  ratios = (0.5, 1.25)
  labels = apis.inference_segmentor(segmentor, img, tta=True, ratios=ratios)
  assert labels.shape == (45, 60)
  probs = inference.tta_probs(segmentor.tta, segmentor.variables, img, segmentor.config.data,
                              ratios)
  assert np.array_equal(labels, np.asarray(probs[0]).argmax(-1))


def test_checkpoint_of_another_architecture(pth, segmentor, tmp_path):
  other = 'configs/pspnet.py:r18w16-d8_64x64_2k_synthetic'
  with pytest.raises(ValueError, match=r'does not fit pspnet.*\n.*missing keys: .*psp_modules'):
    apis.init_segmentor(other, pth)
  orbax_dir = str(tmp_path / 'fcn_orbax')
  checkpoints.save_variables(orbax_dir, segmentor.variables)
  restored = apis.init_segmentor(SPEC, orbax_dir)
  img = _picture()
  assert np.array_equal(apis.inference_segmentor(restored, img),
                        apis.inference_segmentor(segmentor, img))
  with pytest.raises(ValueError, match=r'fcn_orbax does not fit pspnet.*\n.*missing variables: '
                                       r'.*psp_modules'):
    apis.init_segmentor(other, orbax_dir)


def test_main_predict_writes_overlay(pth, tmp_path):
  image, out = str(tmp_path / 'in.jpg'), str(tmp_path / 'out' / 'seg.png')
  cv2.imwrite(image, _picture(41, 67))
  proc = subprocess.run(
      [sys.executable, '-m', 'jseg.main', f'--config={SPEC}', '--mode=predict',
       f'--checkpoint={pth}', f'--image={image}', f'--out={out}'],
      cwd=ROOT, capture_output=True, text=True, timeout=300,
      env={**os.environ, 'JAX_PLATFORMS': 'cpu'})
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'wrote' in proc.stdout
  assert cv2.imread(out).shape == (41, 67, 3)
