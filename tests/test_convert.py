"""MMSeg checkpoint import: orbax round trip, wrapped checkpoints, training checkpoints of MMSeg
1.x and v0.x read weights-only, numpy state_dicts, and bad inputs."""
import copy
import io
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import mmseg_ref as ref
import parity
from jseg import checkpoints, pth
from jseg import config as jconfig
from jseg.convert import mmseg_to_jseg, variable_shapes
from jseg.models import build_segmentor

SPEC = 'configs/pspnet.py:r18-d8_512x1024_80k_cityscapes'
ROOT = os.path.join(os.path.dirname(__file__), '..')


@pytest.fixture(scope='module')
def psp_model():
  return ref.random_mmseg_model(
      ref.mmseg_config('pspnet', 'r18-d8_512x1024_80k_cityscapes').model, seed=3)


@pytest.fixture(scope='module')
def psp(psp_model):
  return jconfig.load(SPEC), psp_model.state_dict()


def test_orbax_round_trip_gives_bit_identical_logits(psp, tmp_path):
  config, sd = psp
  variables = mmseg_to_jseg(sd, config)
  checkpoints.save_variables(tmp_path / 'ckpt', variables)
  restored = checkpoints.restore_variables(tmp_path / 'ckpt')
  model = build_segmentor(config)
  x = jnp.asarray(np.random.default_rng(0).standard_normal((1, 45, 61, 3)), jnp.float32)
  np.testing.assert_array_equal(np.asarray(model.apply(variables, x)),
                                np.asarray(model.apply(restored, x)))


def test_zoo_checkpoint_wrapping_is_unwrapped(psp):
  config, sd = psp
  plain = mmseg_to_jseg(sd, config)
  wrapped = mmseg_to_jseg({'meta': {'CLASSES': []}, 'state_dict': sd}, config)
  jax.tree_util.tree_map(np.testing.assert_array_equal, plain, wrapped)


def test_state_dict_of_another_architecture_names_the_keys(psp):
  _, sd = psp
  other = jconfig.load('configs/deeplabv3.py:r18-d8_512x1024_80k_cityscapes')
  with pytest.raises(ValueError) as e:
    mmseg_to_jseg(sd, other)
  msg = str(e.value)
  assert 'deeplabv3_r18-d8_512x1024_80k_cityscapes' in msg
  assert 'missing keys: decode_head.aspp_modules.0.bn.bias' in msg
  assert 'decode_head.psp_modules.0.1.conv.weight' in msg.split('unexpected keys:')[1]
  assert 'decode_head.bottleneck.conv.weight has (128, 1024, 3, 3), needs (128, 640, 3, 3)' in msg


def test_wrong_shapes_and_classes_are_named(psp):
  _, sd = psp
  config = jconfig.load(SPEC).copy_and_resolve_references()
  config.model.decode_head.num_classes = 150
  with pytest.raises(ValueError) as e:
    mmseg_to_jseg(sd, config)
  assert str(e.value).endswith('wrongly shaped keys: decode_head.conv_seg.bias has (19,), needs '
                               '(150,), decode_head.conv_seg.weight has (19, 128, 1, 1), needs '
                               '(150, 128, 1, 1)')


def test_corrupt_pth_names_the_file(tmp_path):
  bad = tmp_path / 'model.pth'
  bad.write_bytes(b'\x80\x02not a checkpoint' * 10)
  with pytest.raises(ValueError, match='model.pth is not a readable PyTorch checkpoint'):
    pth.load(bad)


def test_unknown_variant_lists_the_valid_ones():
  with pytest.raises(ValueError) as e:
    jconfig.load('configs/pspnet.py:r50-d8_512x1024_80k_citiscapes')
  assert "unknown config variant 'r50-d8_512x1024_80k_citiscapes'" in str(e.value)
  assert 'r101-d8_769x769_80k_cityscapes' in str(e.value)


def test_config_is_locked_against_typos():
  config = jconfig.load(SPEC)
  with pytest.raises(AttributeError, match='chanels'):
    config.model.decode_head.chanels = 64
  with pytest.raises(FileNotFoundError, match='configs/nope.py'):
    jconfig.load('configs/nope.py:r50')


def test_convert_command_writes_a_restorable_checkpoint(psp, tmp_path):
  config, sd = psp
  torch.save({'meta': {}, 'state_dict': sd}, tmp_path / 'psp.pth')
  out = tmp_path / 'out'
  subprocess.run([sys.executable, '-m', 'jseg.convert', f'--config={SPEC}',
                  f'--checkpoint={tmp_path / "psp.pth"}', f'--out={out}'],
                 check=True, cwd=ROOT, capture_output=True)
  restored = checkpoints.restore_variables(out)
  jax.tree_util.tree_map(np.testing.assert_array_equal, restored, mmseg_to_jseg(sd, config))


def _mmseg_1x_checkpoint(model, path) -> dict:
  """Saves ``model`` after two SGD steps (in place) as MMSeg 1.x training does: what mmengine
  0.10's ``Runner.save_checkpoint`` puts in (meta with Cityscapes' ``dataset_meta``, the
  ``message_hub`` of HistoryBuffers, optimizer, PolyLR), from mmengine's own objects, written by
  its ``save_checkpoint``. Returns the checkpoint."""
  import mmengine
  from mmengine.logging import MessageHub
  from mmengine.optim import OptimWrapper, PolyLR
  from mmengine.runner.checkpoint import get_state_dict, save_checkpoint, weights_to_cpu
  from mmseg.datasets import CityscapesDataset
  optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9,
                                       weight_decay=5e-4))
  scheduler = PolyLR(optim, eta_min=1e-4, power=0.9, begin=0, end=80000, by_epoch=False)
  meta = dict(cfg="norm_cfg = dict(type='SyncBN', requires_grad=True)\n", seed=1716563208,
              experiment_name='20230302_191700', mmengine_version=mmengine.__version__,
              dataset_meta=CityscapesDataset.METAINFO)
  hub = MessageHub('mmseg_1x_checkpoint')
  for key, value in meta.items():
    hub.update_info(key, value)
  g = torch.Generator().manual_seed(0)
  for it in range(2):
    for p in model.parameters():
      p.grad = 1e-3 * torch.randn(p.shape, generator=g)
    optim.step()
    scheduler.step()
    hub.update_scalars({'train/lr': optim.get_lr()['lr'][0], 'train/loss': 2.5 - it,
                        'train/time': 0.41, 'train/data_time': 0.02})
    hub.update_info('iter', it)
    hub.update_info('eta', np.float64(8123.4 - it))
  checkpoint = dict(meta=dict(epoch=0, iter=2, time='20230302_191742', **meta),
                    state_dict=weights_to_cpu(get_state_dict(model)),
                    message_hub=hub.state_dict(), optimizer=optim.state_dict(),
                    param_schedulers=[scheduler.state_dict()])
  save_checkpoint(checkpoint, str(path))
  return checkpoint


def test_mmseg_1x_training_checkpoint_loads_weights_only(psp_model, tmp_path):
  model = copy.deepcopy(psp_model)
  path = tmp_path / 'iter_2.pth'
  saved = _mmseg_1x_checkpoint(model, path)
  assert {'mmengine.logging.history_buffer.HistoryBuffer', 'builtins.getattr'} <= set(
      torch.serialization.get_unsafe_globals_in_checkpoint(path))  # torch alone refuses it
  loaded = pth.load(path)
  config = jconfig.load(SPEC)
  jax.tree_util.tree_map(np.testing.assert_array_equal, mmseg_to_jseg(loaded, config),
                         mmseg_to_jseg(model.state_dict(), config))
  assert loaded['meta'] == saved['meta']
  assert loaded['message_hub']['runtime_info'] == saved['message_hub']['runtime_info']
  for name, buffer in saved['message_hub']['log_scalars'].items():
    np.testing.assert_array_equal(vars(loaded['message_hub']['log_scalars'][name])['_log_history'],
                                  buffer._log_history)
  assert loaded['param_schedulers'] == saved['param_schedulers']


def _mmseg_0x_checkpoint(model, path) -> dict:
  """Saves ``model`` as MMSeg v0.x training did: mmcv 1.x's ``save_checkpoint`` under its
  IterBasedRunner with MMSeg's meta (a custom data set's random numpy PALETTE, EvalHook's numpy
  ``best_score``), in torch's legacy format with numpy 1.x's module names. Returns the
  checkpoint."""
  from mmengine.runner.checkpoint import get_state_dict, weights_to_cpu  # mmcv 1.x's, moved
  from mmseg.datasets import CityscapesDataset
  meta = dict(env_info='sys.platform: linux\nPython: 3.8.13\nPyTorch: 1.11.0', seed=0,
              exp_name='pspnet_r18-d8_512x1024_80k_cityscapes.py', mmseg_version='0.30.0+a6b3ad6',
              config="norm_cfg = dict(type='SyncBN', requires_grad=True)\n",
              CLASSES=CityscapesDataset.METAINFO['classes'],
              PALETTE=np.random.RandomState(42).randint(0, 255, size=(19, 3)),
              hook_msgs=dict(last_ckpt='work_dirs/pspnet/iter_80000.pth', best_score=np.float64(0.7412),
                             best_ckpt='work_dirs/pspnet/best_mIoU_iter_80000.pth'),
              iter=80000, epoch=1, mmcv_version='1.7.1', time='Thu Mar  2 19:17:00 2023')
  optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
  checkpoint = dict(meta=meta, state_dict=weights_to_cpu(get_state_dict(model)),
                    optimizer=optimizer.state_dict())
  buffer = io.BytesIO()
  torch.save(checkpoint, buffer, _use_new_zipfile_serialization=False)
  data = buffer.getvalue().replace(b'numpy._core.multiarray\n', b'numpy.core.multiarray\n')
  assert b'cnumpy.core.multiarray\n_reconstruct\n' in data and b'\nscalar\n' in data
  path.write_bytes(data)
  return checkpoint


def test_mmseg_0x_training_checkpoint_loads_weights_only(psp_model, psp, tmp_path):
  config, sd = psp
  path = tmp_path / 'iter_80000.pth'
  saved = _mmseg_0x_checkpoint(psp_model, path)
  loaded = pth.load(path)
  jax.tree_util.tree_map(np.testing.assert_array_equal, mmseg_to_jseg(loaded, config),
                         mmseg_to_jseg(sd, config))
  np.testing.assert_array_equal(loaded['meta'].pop('PALETTE'), saved['meta']['PALETTE'])
  assert loaded['meta'] == {k: v for k, v in saved['meta'].items() if k != 'PALETTE'}
  assert type(loaded['meta']['hook_msgs']['best_score']) is np.float64


class _Exploit:
  """Runs a shell command when unpickled."""

  def __init__(self, command):
    self.command = command

  def __reduce__(self):
    return os.system, (self.command,)


class _Getattr:
  """Unpickles as ``getattr(numpy.ndarray, 'tofile')``."""

  def __reduce__(self):
    return getattr, (np.ndarray, 'tofile')


def test_a_pickle_that_runs_code_is_refused_unrun(tmp_path):
  marker = tmp_path / 'ran'
  path = tmp_path / 'exploit.pth'
  torch.save({'meta': {'note': _Exploit(f'touch {marker}')}, 'state_dict': {'w': torch.ones(2)}},
             path)
  with pytest.raises(pth.PthError, match=rf'exploit\.pth: refused global '
                                         rf'{os.system.__module__}\.system: .*runs no code'):
    pth.load(path)
  assert not marker.exists()
  torch.load(path, weights_only=False)  # the exploit is live: a full unpickle runs it
  assert marker.exists()
  # getattr is a stand-in that names HistoryBuffer's methods, and reaches nothing else.
  torch.save({'meta': _Getattr()}, tmp_path / 'getattr.pth')
  with pytest.raises(pth.PthError, match=r'getattr\.pth: refused getattr of .*numpy\.ndarray'):
    pth.load(tmp_path / 'getattr.pth')


def test_numpy_state_dict_imports_as_the_torch_one(psp):
  config, sd = psp
  jax.tree_util.tree_map(np.testing.assert_array_equal,
                         mmseg_to_jseg({k: v.numpy() for k, v in sd.items()}, config),
                         mmseg_to_jseg(sd, config))


def test_ann_numpy_state_dict_holds_the_shared_projection_once():
  config, mm = parity.pair('ann', 'r50-d8_512x1024_80k_cityscapes', resnet18=True)
  sd = mm.state_dict()
  stage = 'decode_head.context.stages.0'  # APNB: SelfAttentionBlock(share_key_query=True)
  shared = mm.decode_head.context.stages[0].key_project.conv.weight
  assert sd[f'{stage}.query_project.conv.weight'].data_ptr() == shared.data_ptr()
  arrays = {k: v.numpy().copy() for k, v in sd.items()}  # distinct copies, equal values
  got = mmseg_to_jseg(arrays, config)
  jax.tree_util.tree_map(np.testing.assert_array_equal, got, mmseg_to_jseg(sd, config))
  np.testing.assert_array_equal(
      got['params']['decode_head']['context']['stages']['0']['key_project']['conv']['kernel'],
      shared.detach().numpy().transpose(2, 3, 1, 0))
  arrays[f'{stage}.query_project.conv.weight'] += 1  # then they are not one module
  with pytest.raises(ValueError, match=rf'unexpected keys: {stage}\.query_project\.conv\.weight$'):
    mmseg_to_jseg(arrays, config)


def test_variable_shapes_follow_every_model_change():
  """variable_shapes remembers a model's shapes, never those of another: a changed class count,
  depth or input size gives the new model's."""
  config = jconfig.load('configs/fcn.py:r18w16-d8_64x64_2k_synthetic')
  kernel = lambda c: variable_shapes(c)['params']['decode_head']['conv_seg']['kernel'].shape
  assert kernel(config) == (1, 1, 32, 6)
  config.data.num_classes = 3  # followed by the heads' num_classes
  assert kernel(config) == (1, 1, 32, 3)
  assert variable_shapes(config) is variable_shapes(config)
  config.model.backbone.depth = 50
  assert 'conv3' in variable_shapes(config)['params']['backbone']['layer1']['0']
  assert variable_shapes(config) is not variable_shapes(config, (96, 96))
