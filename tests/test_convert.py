"""MMSeg checkpoint import: orbax round trip, wrapped checkpoints, and bad inputs."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import mmseg_ref as ref
from jseg import checkpoints
from jseg import config as jconfig
from jseg.convert import load_pth, mmseg_to_jseg
from jseg.models import build_segmentor

SPEC = 'configs/pspnet.py:r18-d8_512x1024_80k_cityscapes'
ROOT = os.path.join(os.path.dirname(__file__), '..')


@pytest.fixture(scope='module')
def psp():
  config = jconfig.load(SPEC)
  mm = ref.randomize(ref.build_mmseg_model(
      ref.mmseg_config('pspnet', 'r18-d8_512x1024_80k_cityscapes').model), seed=3)
  return config, mm.state_dict()


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
    load_pth(str(bad))


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
