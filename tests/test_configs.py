"""Every config variant equals MMSeg's config of that name, builds, and converts MMSeg's weights."""
import collections
import glob
import os

import jax
import numpy as np
import pytest

import mmseg_ref as ref
from jseg import config as jconfig
from jseg.convert import mmseg_to_jseg, variable_shapes

CONFIG_FILES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), '..', 'configs', '*.py')))
IGNORED_MMSEG_KEYS = {'norm_cfg', 'act_cfg', 'init_cfg', 'norm_eval', 'style',
                      'num_stages', 'in_channels_', 'conv_cfg'}
# MMSeg 1.x config files that differ from the v0.x config (and checkpoint) of their name:
# (method, variant) -> the train_cfg values of v0.x. ann_r101-d8_4xb4-40k_voc12aug inherits
# the r50 *20k* file in 1.x; v0.x's ann_r101-d8_512x512_40k_voc12aug trains 40k. Likewise
# deeplabv3plus_r18b-d8_4xb2-80k_cityscapes-769x769 inherits the r50 40k file; v0.x's
# deeplabv3plus_r18b-d8_769x769_80k_cityscapes inherits the 80k one, and the fp16 DeepLabV3
# (1.x deeplabv3_r101-d8_4xb2-amp-80k_cityscapes-512x1024 inherits the 40k file; v0.x's
# deeplabv3_r101-d8_512x1024_80k_fp16_cityscapes the 80k one).
MMSEG_1X_SCHEDULE_ERRORS = {
    ('ann', 'r101-d8_512x512_40k_voc12aug'): dict(max_iters=40000, val_interval=4000),
    ('deeplabv3plus', 'r18b-d8_769x769_80k_cityscapes'): dict(max_iters=80000,
                                                              val_interval=8000),
    ('deeplabv3', 'r101-d8_512x1024_80k_fp16_cityscapes'): dict(max_iters=80000,
                                                                val_interval=8000),
}


def _method(path):
  return os.path.splitext(os.path.basename(path))[0]


ALL = [(_method(p), v) for p in CONFIG_FILES for v in jconfig.config_variants(p)
       if v.rsplit('_', 1)[1] not in jconfig.JSEG_DATASETS]  # jseg's own: no MMSeg config


def _norm(v):
  if isinstance(v, (list, tuple)):
    return tuple(_norm(x) for x in v)
  if isinstance(v, dict) or hasattr(v, 'items'):
    return {k: _norm(x) for k, x in v.items()}
  return v


def _assert_same(jseg_cfg, mm_cfg, where):
  """Every key MMSeg sets is in jseg with the same value (recursing into sub-dicts)."""
  jseg_cfg, mm_cfg = _norm(jseg_cfg), _norm(mm_cfg)
  for key, want in mm_cfg.items():
    if key in IGNORED_MMSEG_KEYS:
      continue
    assert key in jseg_cfg, f'{where}.{key} missing (MMSeg: {want!r})'
    got = jseg_cfg[key]
    if isinstance(want, dict):
      _assert_same(got, want, f'{where}.{key}')
    elif isinstance(want, tuple) and want and all(isinstance(w, dict) for w in want):
      assert isinstance(got, tuple) and len(got) == len(want), f'{where}.{key}: {got!r}'
      for i, (g, w) in enumerate(zip(got, want)):  # e.g. a cascade's list of heads
        _assert_same(g, w, f'{where}.{key}[{i}]')
    else:
      assert got == want, f'{where}.{key}: jseg {got!r} != MMSeg {want!r}'


def test_every_config_file_is_walked():
  assert {'fcn', 'pspnet', 'deeplabv3', 'deeplabv3plus'} <= {m for m, _ in ALL}


@pytest.mark.parametrize('method,variant', ALL, ids=[f'{m}:{v}' for m, v in ALL])
def test_config_equals_mmseg(method, variant):
  c = jconfig.load(f'configs/{method}.py:{variant}')
  mm = ref.mmseg_config(method, variant)
  fix = MMSEG_1X_SCHEDULE_ERRORS.get((method, variant), {})
  mm.train_cfg.update(fix)
  if fix:  # its poly decay inherits the 20k end too
    mm.param_scheduler[0].end = fix['max_iters']
  _assert_same(c.model.to_dict(), {k: v for k, v in mm.model.items()
                                   if k not in ('type', 'data_preprocessor', 'train_cfg', 'test_cfg')},
               'model')
  if 'type' in mm.model and mm.model.type != 'EncoderDecoder':
    assert c.model.type == mm.model.type
  _assert_same(c.test.to_dict(), mm.model.test_cfg, 'test')
  gpus = int(os.path.basename(ref.mmseg_config_path(method, variant)).split('_')[2].split('xb')[0])
  assert c.train.batch_size == gpus * mm.train_dataloader.batch_size
  assert c.train.iterations == mm.train_cfg.max_iters
  assert c.train.eval_interval == mm.train_cfg.val_interval
  amp = mm.optim_wrapper.get('type') == 'AmpOptimWrapper'  # MMSeg's fp16 rows
  assert (c.precision == 'float16') == amp
  assert c.train.loss_scale == (mm.optim_wrapper.loss_scale if amp else None)
  opt = mm.optim_wrapper.optimizer
  assert (c.train.lr, c.train.momentum, c.train.weight_decay) == (opt.lr, opt.momentum,
                                                                 opt.weight_decay)
  sched = mm.param_scheduler[0]
  assert (c.train.poly_power, c.train.min_lr) == (sched.power, sched.eta_min)
  assert (sched.begin, sched.end) == (0, c.train.schedule_end or c.train.iterations)
  assert tuple(c.data.crop_size) == tuple(mm.crop_size)
  assert tuple(c.data.mean) == tuple(mm.model.data_preprocessor.mean)
  assert tuple(c.data.std) == tuple(mm.model.data_preprocessor.std)
  train_steps = {t['type']: t for t in mm.train_pipeline}
  assert tuple(c.data.ratio_range) == tuple(train_steps['RandomResize']['ratio_range'])
  assert tuple(c.data.img_scale) == tuple(train_steps['RandomResize']['scale'])
  test_steps = {t['type']: t for t in mm.test_pipeline}
  assert tuple(c.data.img_scale) == tuple(test_steps['Resize']['scale'])
  assert c.data.cat_max_ratio == train_steps['RandomCrop']['cat_max_ratio']
  assert c.data.reduce_zero_label == train_steps['LoadAnnotations'].get('reduce_zero_label', False)


def _structure_groups():
  """One variant per distinct network (method, backbone, classes): the rest only differ in data."""
  groups = collections.OrderedDict()
  for method, variant in ALL:
    c = jconfig.load(f'configs/{method}.py:{variant}')
    groups.setdefault((method, repr(_norm(c.model.to_dict()))), (method, variant))
  return list(groups.values())


STRUCTURES = _structure_groups()


@pytest.mark.parametrize('method,variant', STRUCTURES, ids=[f'{m}:{v}' for m, v in STRUCTURES])
def test_builds_and_converts_with_mmseg_parameter_count(method, variant):
  c = jconfig.load(f'configs/{method}.py:{variant}')
  mm = ref.build_mmseg_model(ref.mmseg_config(method, variant).model)
  shapes = variable_shapes(c)
  n_params = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(shapes['params']))
  assert n_params == sum(p.numel() for p in mm.parameters())
  variables = mmseg_to_jseg(mm.state_dict(), c)  # every key and shape accounted for
  assert jax.tree_util.tree_structure(variables) == jax.tree_util.tree_structure(shapes)
