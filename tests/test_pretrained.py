"""ImageNet-pretrained backbones: ``model.pretrained`` loads as MMSeg's ``init_weights()`` does,
downloads are cached, checked and atomic, and a wrong file fails before a run starts."""
import hashlib
import os

import flax
import jax
import numpy as np
import pytest
import torch

import mmseg_ref as ref
from jseg import config as jconfig
from jseg import download, pretrained, train
from jseg.convert import mmseg_to_jseg, variable_shapes

# The classification layers the real ImageNet files have besides the backbone's keys.
CLASSIFIERS = {
    'ResNetV1c': {'fc.weight': (1000, 2048), 'fc.bias': (1000,)},
    'ResNet': {'fc.weight': (1000, 2048), 'fc.bias': (1000,)},
    'HRNet': {'incre_modules.0.0.conv1.weight': (32, 18, 1, 1), 'final_layer.0.weight': (2048, 1024, 1, 1),
              'classifier.weight': (1000, 2048), 'classifier.bias': (1000,)},
}
CASES = [('fcn', 'r18-d8_512x1024_80k_cityscapes', 'open-mmlab://resnet18_v1c'),
         ('fcn', 'r50-d8_512x1024_40k_cityscapes', 'open-mmlab://resnet50_v1c'),
         ('fcn', 'r101-d8_512x1024_40k_cityscapes', 'open-mmlab://resnet101_v1c'),
         ('fcn', 'r50b-d8_512x1024_80k_cityscapes', 'torchvision://resnet50'),
         ('hrnet', 'hr18s_512x1024_40k_cityscapes', 'open-mmlab://msra/hrnetv2_w18_small'),
         ('hrnet', 'hr18_512x1024_40k_cityscapes', 'open-mmlab://msra/hrnetv2_w18'),
         ('hrnet', 'hr48_512x1024_40k_cityscapes', 'open-mmlab://msra/hrnetv2_w48')]


def _imagenet_file(path, method, variant, seed=0):
  """A file in the layout of MMSeg's ImageNet weights for ``variant``'s backbone: its random
  state_dict (keys relative to the backbone; torch's OrderedDict with its ``_metadata``) plus the
  classifier; returns the state_dict. torchvision's files (MMSeg's ``ResNet``) hold the bare
  state_dict, open-mmlab's wrap it, in torch's legacy format (saved before torch 1.6)."""
  mm = ref.random_mmseg_model(ref.mmseg_config(method, variant).model, seed)
  sd = mm.backbone.state_dict()
  assert sd._metadata  # read as data by jseg.pth
  g = torch.Generator().manual_seed(seed)
  kind = type(mm.backbone).__name__
  for key, shape in CLASSIFIERS[kind].items():
    sd[key] = torch.randn(shape, generator=g)
  torch.save(sd if kind == 'ResNet' else {'state_dict': sd}, path,
             _use_new_zipfile_serialization=kind == 'ResNet')
  return sd


def _zeros(config):
  """Variables of ``config``'s shapes, without running flax's initializers."""
  return jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), variable_shapes(config))


def _config(method, variant, pretrained_file):
  config = jconfig.load(f'configs/{method}.py:{variant}')
  config.unlock()
  config.model.pretrained = str(pretrained_file)
  return config


@pytest.mark.parametrize('method,variant,name', CASES, ids=[c[1] for c in CASES])
def test_backbone_equals_mmseg_init_weights_from_the_same_file(tmp_path, method, variant, name):
  assert jconfig.load(f'configs/{method}.py:{variant}').model.pretrained == name
  path = tmp_path / 'imagenet.pth'
  _imagenet_file(path, method, variant)
  mm = ref.build_mmseg_model(ref.mmseg_config(method, variant).model, pretrained=str(path))
  mm.init_weights()  # MMSeg: load_checkpoint(backbone, path, strict=False)
  config = _config(method, variant, path)
  want = flax.traverse_util.flatten_dict(mmseg_to_jseg(mm.state_dict(), config))
  if variant.startswith('r18'):  # a run's start, end to end
    variables = train.init_variables(config, jax.random.key(0))
  else:  # the same loading without flax's initializers (tens of seconds for HRNet-W48)
    variables = pretrained.load_backbone(_zeros(config), config)
  got = flax.traverse_util.flatten_dict(variables)
  backbone = [p for p in want if p[1] == 'backbone']
  assert len(backbone) > 50
  for p in backbone:
    np.testing.assert_array_equal(np.asarray(got[p]), np.asarray(want[p]), err_msg='/'.join(p))


RSB = ('pspnet', 'r50-d8_rsb-pretrain_512x1024_adamw_80k_cityscapes')


def test_prefixed_file_loads_as_mmseg_pretrained_init_cfg(tmp_path):
  """The rsb rows' backbone comes from the ``backbone.`` keys of a whole model's weights
  (mmcls' classifier); here a whole segmentor's state_dict, as MMSeg's
  ``init_cfg=dict(type='Pretrained', prefix='backbone.')`` loads it from the same file."""
  method, variant = RSB
  mm_cfg = ref.mmseg_config(method, variant)
  assert mm_cfg.model.backbone.init_cfg.prefix == 'backbone.'
  path = tmp_path / 'segmentor.pth'
  sd = ref.random_mmseg_model(mm_cfg.model, seed=3).state_dict()
  assert any(k.startswith('decode_head.') for k in sd)
  torch.save({'state_dict': sd, 'meta': {}}, path)
  mm = ref.build_mmseg_model(mm_cfg.model, pretrained=str(path))
  mm.init_weights()  # MMSeg: _load_checkpoint_with_prefix('backbone.', path), strict=False
  config = _config(method, variant, path)
  assert config.model.pretrained_prefix == 'backbone.'
  want = flax.traverse_util.flatten_dict(mmseg_to_jseg(mm.state_dict(), config))
  got = flax.traverse_util.flatten_dict(pretrained.load_backbone(_zeros(config), config))
  backbone = [p for p in want if p[1] == 'backbone']
  assert len(backbone) > 50
  for p in backbone:
    np.testing.assert_array_equal(np.asarray(got[p]), np.asarray(want[p]), err_msg='/'.join(p))
  # MMSeg's init did load the file's values
  assert torch.equal(mm.state_dict()['backbone.conv1.weight'], sd['backbone.conv1.weight'])
  config.model.pretrained_prefix = 'head.'
  with pytest.raises(ValueError, match=r"segmentor\.pth has no keys starting with 'head\.'"):
    pretrained.load_backbone(_zeros(config), config)


def test_resolves_mmseg_names_to_mmengine_urls():
  import json
  import mmengine
  hubs = {scheme: json.load(open(os.path.join(os.path.dirname(mmengine.__file__), 'hub', f)))
          for scheme, f in (('open-mmlab', 'openmmlab.json'),
                            ('torchvision', 'torchvision_0.12.json'))}
  for name, url in pretrained.URLS.items():
    scheme, _, key = name.partition('://')
    assert hubs[scheme][key] == url
    assert pretrained.resolve(name) == url
  assert {f'torchvision://resnet{d}' for d in (18, 50, 101)} <= set(pretrained.URLS)
  assert pretrained.resolve('openmmlab://resnet50_v1c') == pretrained.URLS[
      'open-mmlab://resnet50_v1c']
  assert pretrained.resolve('/data/x.pth') == '/data/x.pth'
  with pytest.raises(ValueError, match='resnet34_v1c'):
    pretrained.resolve('open-mmlab://resnet34_v1c')
  with pytest.raises(ValueError, match="unknown pretrained model 'torchvision://resnet34'"):
    pretrained.resolve('torchvision://resnet34')


def test_another_depth_fails_naming_the_file_and_keys(tmp_path):
  path = tmp_path / 'r18.pth'
  _imagenet_file(path, 'fcn', 'r18-d8_512x1024_80k_cityscapes')
  with pytest.raises(ValueError, match=r'r18\.pth.*wrongly shaped keys: layer1\.0\.conv1\.weight'):
    config = _config('fcn', 'r50-d8_512x1024_40k_cityscapes', path)
    pretrained.load_backbone(_zeros(config), config)


def test_a_file_that_covers_too_little_fails(tmp_path):
  sd = _imagenet_file(tmp_path / 'r18.pth', 'fcn', 'r18-d8_512x1024_80k_cityscapes')
  # A detection checkpoint: the same backbone under 'backbone.', which MMSeg's strict=False
  # would silently skip (the run would start from random weights).
  path = tmp_path / 'detector.pth'
  torch.save({'state_dict': {f'backbone.{k}': v for k, v in sd.items()}}, path)
  with pytest.raises(ValueError, match=r'detector\.pth.* 0 of its \d+ variables; missing keys: '):
    train.init_variables(_config('fcn', 'r18-d8_512x1024_80k_cityscapes', path),
                         jax.random.key(0))
  corrupt = tmp_path / 'corrupt.pth'
  corrupt.write_bytes(b'not a checkpoint')
  with pytest.raises(ValueError, match='corrupt.pth is not a readable PyTorch checkpoint'):
    train.init_variables(_config('fcn', 'r18-d8_512x1024_80k_cityscapes', corrupt),
                         jax.random.key(0))


def test_download_is_cached_checked_and_atomic(tmp_path, server, monkeypatch):
  url, root, gets = server
  cache = tmp_path / 'cache'
  monkeypatch.setenv('JSEG_CACHE', str(cache))
  data = os.urandom(3 << 20)
  name = f'resnet_v1c-{hashlib.sha256(data).hexdigest()[:8]}.pth'
  (root / name).write_bytes(data)
  path = download.fetch(f'{url}/{name}', progress=False)
  assert path == str(cache / name) and open(path, 'rb').read() == data
  assert download.fetch(f'{url}/{name}', progress=False) == path and len(gets) == 1  # cached
  # A file whose content does not match its name's sha256 prefix is refused and not kept.
  (root / 'resnet_v1c-00000000.pth').write_bytes(data)
  with pytest.raises(OSError, match='corrupt: sha256'):
    download.fetch(f'{url}/resnet_v1c-00000000.pth', progress=False)
  with pytest.raises(OSError, match='truncated|IncompleteRead'):
    download.fetch(f'{url}/truncated/resnet_v1c-12345678.pth', progress=False)
  assert sorted(os.listdir(cache)) == [name]  # nothing partial left behind


def test_offline_error_names_the_url_and_where_to_put_the_file(tmp_path, monkeypatch):
  monkeypatch.setenv('JSEG_CACHE', str(tmp_path))
  url = 'http://127.0.0.1:9/pretrain/resnet50_v1c-2cccc1ad.pth'  # nothing listens on port 9
  with pytest.raises(OSError, match=f'cannot download {url}.*put the file at '
                                    f'{tmp_path}/resnet50_v1c-2cccc1ad.pth'):
    download.fetch(url, progress=False)
  assert os.listdir(tmp_path) == []
