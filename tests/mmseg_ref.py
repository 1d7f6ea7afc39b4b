"""MMSegmentation 1.2.2 as the reference: import it on the CPU, build its models, randomize them.

MMSeg imports ``mmcv.ops``, whose compiled extension mmcv-lite lacks. ``install_mmcv_ops``
puts a stand-in ``mmcv.ops`` in ``sys.modules`` holding the ops MMSeg uses in pure
PyTorch: mmcv's own CrissCrossAttention and point_sample files, and PSAMask written
from mmcv's CPU kernel (``psamask_ref``).
"""
import copy
import importlib.util
import os
import sys
import types

import numpy as np
import torch

import mmcv
from jseg import config as jconfig


def _load_mmcv_file(name):
  path = os.path.join(os.path.dirname(mmcv.__file__), 'ops', f'{name}.py')
  spec = importlib.util.spec_from_file_location(f'mmcv_ops_standin_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def install_mmcv_ops():
  if 'mmcv.ops' in sys.modules and getattr(sys.modules['mmcv.ops'], 'JSEG_STANDIN', False):
    return
  ops = types.ModuleType('mmcv.ops')
  ops.JSEG_STANDIN = True
  ops.CrissCrossAttention = _load_mmcv_file('cc_attention').CrissCrossAttention
  ops.point_sample = _load_mmcv_file('point_sample').point_sample
  try:
    from psamask_ref import PSAMask  # noqa: written from mmcv's CPU kernel
    ops.PSAMask = PSAMask
  except ImportError:
    pass

  def sigmoid_focal_loss(*args, **kwargs):
    raise NotImplementedError('sigmoid_focal_loss is not part of the mmcv.ops stand-in')

  ops.sigmoid_focal_loss = sigmoid_focal_loss
  sys.modules['mmcv.ops'] = ops
  mmcv.ops = ops


install_mmcv_ops()

from mmengine import Config  # noqa: E402
from mmengine.model import revert_sync_batchnorm  # noqa: E402
import mmseg  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402
from mmseg.utils import register_all_modules  # noqa: E402

register_all_modules()
CONFIG_ROOT = os.path.join(os.path.dirname(mmseg.__file__), '.mim', 'configs')


def mmseg_config_path(method: str, variant: str) -> str:
  """Path of MMSeg 1.x's config for the v0.x name ``<method>_<variant>``."""
  return os.path.join(CONFIG_ROOT, jconfig.mmseg_config_name(method, variant))


def mmseg_config(method: str, variant: str) -> Config:
  return Config.fromfile(mmseg_config_path(method, variant))


def build_mmseg_model(model_cfg, pretrained=None) -> torch.nn.Module:
  """MMSeg model from its ``model`` config, plain BN instead of SyncBN; ``init_weights()``
  loads the backbone from the ``pretrained`` file if given: as the config's backbone
  ``init_cfg`` of type ``Pretrained`` loads its checkpoint (with its ``prefix``: the rsb rows)
  where it has one, else as ``model.pretrained``."""
  cfg = copy.deepcopy(model_cfg)
  cfg.pop('data_preprocessor', None)
  init = cfg.backbone.pop('init_cfg', None) if 'backbone' in cfg else None
  if pretrained and init and init.type == 'Pretrained':
    cfg.backbone.init_cfg = dict(init, checkpoint=pretrained)
  else:
    cfg.pretrained = pretrained
  model = revert_sync_batchnorm(MODELS.build(cfg))
  return model.float()


def random_mmseg_model(model_cfg, seed: int = 0) -> torch.nn.Module:
  """:func:`randomize` of the MMSeg model of ``model_cfg``, built without drawing its own
  initial weights, which ``randomize`` overwrites (0.6 s a model); BN's batch counts start at 0."""
  with torch.device('meta'):
    model = build_mmseg_model(model_cfg).to_empty(device='cpu')
  for buffer in model.buffers():
    if not buffer.is_floating_point():
      buffer.zero_()
  return randomize(model, seed)


@torch.no_grad()
def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
  """Random weights (also the zero-initialised ones) and BN statistics, scaled to stay O(1)."""
  g = torch.Generator().manual_seed(seed)
  for name, p in list(model.named_parameters()) + list(model.named_buffers()):
    if not p.is_floating_point():
      continue
    if p.dim() >= 2:  # conv / linear weight
      fan_in = p[0].numel()
      p.copy_(torch.randn(p.shape, generator=g) * (1.0 / fan_in) ** 0.5)
    elif name.endswith('running_var') or (name.endswith('weight') and p.dim() == 1):
      p.copy_(0.5 + torch.rand(p.shape, generator=g))
    else:  # biases, BN means, attention scales
      p.copy_(0.2 * torch.randn(p.shape, generator=g))
  return model


def rel_err(a, b) -> float:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.abs(a - b).max() / np.abs(b).max())


def nchw(x):
  return torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2)))


def nhwc(t):
  return t.detach().numpy().transpose(0, 2, 3, 1)
