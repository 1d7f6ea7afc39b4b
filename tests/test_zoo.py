"""MMSeg's published weights by name (jseg.zoo): every URL against MMSeg 1.2.2's metafiles,
download through a local HTTP server, cached, checked, offline; and jseg reading
checkpoints where torch cannot be imported."""
import configparser
import hashlib
import os
import subprocess
import sys

import flax
import jax
import numpy as np
import pytest
import torch

import mmseg_ref as ref
from jseg import apis, weights, zoo
from jseg import config as jconfig
from jseg.convert import mmseg_to_jseg

ROOT = os.path.join(os.path.dirname(__file__), '..')
METHOD, VARIANT = 'pspnet', 'r18-d8_512x1024_80k_cityscapes'
SPEC = f'configs/{METHOD}.py:{VARIANT}'
def test_names_of_mmseg_1x_and_v0x_find_the_config():
  assert zoo.find('pspnet_r50-d8_4xb2-80k_cityscapes-512x1024') == (
      'pspnet', 'r50-d8_512x1024_80k_cityscapes')
  assert zoo.find('fcn_hr18_512x1024_40k_cityscapes') == ('hrnet', 'hr18_512x1024_40k_cityscapes')
  assert zoo.find('nonlocal_r50-d8_512x1024_40k_cityscapes') == zoo.find(
      'nonlocal_net_r50-d8_512x1024_40k_cityscapes')
  with pytest.raises(ValueError, match="no config is named 'pspnet_r50_d8_512x1024_80k_cityscape'"
                                       '; closest: pspnet_r50-d8_512x1024_80k_cityscapes'):
    zoo.find('pspnet_r50_d8_512x1024_80k_cityscape')
  with pytest.raises(ValueError, match=r'no weights for configs/pspnet\.py:r50-d8_512x1024_80k_'
                                       r'folder; the closest .*: r50-d8_512x1024_80k_cityscapes'):
    zoo.url('pspnet', 'r50-d8_512x1024_80k_folder')


@pytest.fixture(scope='module')
def psp_state_dict():
  model = ref.random_mmseg_model(ref.mmseg_config(METHOD, VARIANT).model, seed=5)
  return model.state_dict()


@pytest.fixture
def published(tmp_path, server, monkeypatch, psp_state_dict):
  """``SPEC``'s checkpoint, a random MMSeg model in MMSeg's file layout, served at its zoo URL
  by a local server (``zoo.BASE_URL`` and the file's hash patched in); returns
  (server url, its root, its GETs, the file name, the state_dict)."""
  url, root, gets = server
  monkeypatch.setenv('JSEG_CACHE', str(tmp_path / 'cache'))
  monkeypatch.setattr(zoo, 'BASE_URL', url)
  stem = f'{METHOD}_{VARIANT}'
  path = root / METHOD / stem / 'file.pth'
  path.parent.mkdir(parents=True)
  torch.save({'meta': {'CLASSES': ('road',)}, 'state_dict': psp_state_dict}, path)
  suffix = f'20200606_112131-{hashlib.sha256(path.read_bytes()).hexdigest()[:8]}'
  name = f'{stem}_{suffix}.pth'
  path.rename(path.parent / name)
  monkeypatch.setitem(zoo._config_file(METHOD).WEIGHTS, VARIANT, suffix)
  return url, root, gets, name, psp_state_dict


def test_zoo_downloads_once_and_loads_the_weights(published, tmp_path, capfd):
  _, _, gets, name, sd = published
  config = jconfig.load(SPEC)
  want = mmseg_to_jseg(sd, config)
  seg = apis.init_segmentor(SPEC, 'zoo')
  jax.tree_util.tree_map(np.testing.assert_array_equal, seg.variables, want)
  assert name in capfd.readouterr().err  # tqdm's progress bar
  cache = tmp_path / 'cache'
  assert os.listdir(cache) == [name] and len(gets) == 1
  # Later loads, by any of its names, read the cached file: no second download.
  for source in ('zoo', f'zoo:{METHOD}_{VARIANT}',
                 'zoo:pspnet_r18-d8_4xb2-80k_cityscapes-512x1024'):
    assert weights.resolve(source, config) == str(cache / name)
    jax.tree_util.tree_map(np.testing.assert_array_equal,
                           weights.load_variables(config, source), want)
  assert len(gets) == 1


def test_a_wrong_hash_or_a_truncated_download_leaves_nothing(published, tmp_path, monkeypatch):
  url, root, _, name, _ = published
  config = jconfig.load(SPEC)
  monkeypatch.setitem(zoo._config_file(METHOD).WEIGHTS, VARIANT, '20200606_112131-00000000')
  folder = root / METHOD / f'{METHOD}_{VARIANT}'
  (folder / os.path.basename(zoo.url(METHOD, VARIANT))).write_bytes((folder / name).read_bytes())
  with pytest.raises(OSError, match='corrupt: sha256'):
    weights.load_variables(config, 'zoo')
  monkeypatch.setattr(zoo, 'BASE_URL', f'{url}/truncated')
  with pytest.raises(OSError, match='truncated|IncompleteRead'):
    weights.load_variables(config, 'zoo')
  assert os.listdir(tmp_path / 'cache') == []


def test_offline_names_the_url_and_where_to_put_the_file(tmp_path, monkeypatch):
  monkeypatch.setenv('JSEG_CACHE', str(tmp_path))
  monkeypatch.setattr(zoo, 'BASE_URL', 'http://127.0.0.1:9')  # nothing listens on port 9
  url = zoo.url(METHOD, VARIANT)
  with pytest.raises(OSError, match=f'cannot download {url}.*put the file at '
                                    f'{tmp_path}/{os.path.basename(url)}'):
    apis.init_segmentor(SPEC, 'zoo')
  with pytest.raises(ValueError, match=r"published no weights for configs/fcn\.py:r18w16-d8_64x64"
                                       r"_2k_synthetic; the closest .*: r18-d8_"):
    weights.load_variables(jconfig.load('configs/fcn.py:r18w16-d8_64x64_2k_synthetic'), 'zoo')
  assert os.listdir(tmp_path) == []


_WITHOUT_TORCH = """
import sys
sys.modules['torch'] = None  # `import torch` raises ImportError, as where it is not installed
import flax, jax, numpy as np
from jseg import apis, config, convert, main, pretrained, pth, train, weights, zoo
from jseg import models
cfg = config.load('{spec}')
variables = weights.load_variables(cfg, '{zoo_file}')
init = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), convert.variable_shapes(cfg))
backbone = pretrained.load_backbone(init, cfg, '{imagenet_file}')
np.savez('{out}', **flax.traverse_util.flatten_dict(
    {{'zoo': variables, 'imagenet': backbone['params']['backbone']}}, sep='/'))
assert not [m for m in sys.modules if m.split('.')[0] == 'torch' and sys.modules[m]]
"""


def test_checkpoints_load_where_torch_cannot_be_imported(tmp_path, psp_state_dict):
  """jseg's own install has no torch: a zoo checkpoint (zip) and an ImageNet backbone file
  (torch's legacy format, as OpenMMLab published them) load in a process where ``import torch``
  fails, to the variables that the torch path (MMSeg's state_dict itself) gives."""
  requires = configparser.ConfigParser()
  requires.read(os.path.join(ROOT, 'setup.cfg'))
  assert 'torch' not in requires['options']['install_requires']
  zoo_file, imagenet_file = tmp_path / 'zoo.pth', tmp_path / 'resnet18_v1c.pth'
  torch.save({'state_dict': psp_state_dict}, zoo_file)
  backbone = {k[len('backbone.'):]: v for k, v in psp_state_dict.items()
              if k.startswith('backbone.')}
  torch.save({'state_dict': backbone}, imagenet_file, _use_new_zipfile_serialization=False)
  out = tmp_path / 'got.npz'
  subprocess.run([sys.executable, '-c', _WITHOUT_TORCH.format(
      spec=SPEC, zoo_file=zoo_file, imagenet_file=imagenet_file, out=out)],
      check=True, cwd=ROOT, capture_output=True)
  got = np.load(out)
  want = mmseg_to_jseg(psp_state_dict, jconfig.load(SPEC))
  flat = flax.traverse_util.flatten_dict(
      {'zoo': want, 'imagenet': want['params']['backbone']}, sep='/')
  assert sorted(got.files) == sorted(flat)
  for key, value in flat.items():
    np.testing.assert_array_equal(got[key], value, err_msg=key)
