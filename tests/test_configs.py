"""Every config variant equals MMSeg's config of that name, builds, and converts MMSeg's weights;
together the variants cover every MMSeg 1.2.2 config of the 13 methods."""
import collections
import glob
import os
import re

import jax
import numpy as np
import pytest
import torch

import mmseg_ref as ref
from jseg import config as jconfig
from jseg.convert import mmseg_to_jseg, variable_shapes
from jseg.data import datasets

CONFIG_FILES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), '..', 'configs', '*.py')))
METHODS = ('fcn', 'pspnet', 'psanet', 'deeplabv3', 'deeplabv3plus', 'upernet', 'hrnet', 'gcnet',
           'nonlocal_net', 'ccnet', 'danet', 'ann', 'ocrnet')
# MMSeg 1.2.2 configs of the 13 methods that no jseg variant reproduces, with the reason. None:
# every one's backbone (ResNet V1c / V1b at output stride 8, 16 or 32, HRNetV2) is jseg's.
SKIPPED_MMSEG_CONFIGS = {}
IGNORED_MMSEG_KEYS = {'norm_cfg', 'act_cfg', 'init_cfg', 'norm_eval', 'style',
                      'num_stages', 'in_channels_', 'conv_cfg'}
# MMSeg 1.x config files that differ from the v0.x config (and checkpoint) of their name:
# (method, variant) -> the train_cfg values of v0.x. ann_r101-d8_4xb4-40k_voc12aug inherits
# the r50 *20k* file in 1.x; v0.x's ann_r101-d8_512x512_40k_voc12aug trains 40k. Likewise
# deeplabv3plus_r18b-d8_4xb2-80k_cityscapes-769x769 inherits the r50 40k file; v0.x's
# deeplabv3plus_r18b-d8_769x769_80k_cityscapes inherits the 80k one, and the fp16 DeepLabV3
# (1.x deeplabv3_r101-d8_4xb2-amp-80k_cityscapes-512x1024 inherits the 40k file; v0.x's
# deeplabv3_r101-d8_512x1024_80k_fp16_cityscapes the 80k one). The same for
# fcn_r101-d8_4xb4-80k_pascal-context-480x480 and deeplabv3_r101-d8_4xb4-80k_pascal-context-59-
# 480x480 (1.x: the r50 40k file; v0.x and their checkpoints: 80k).
MMSEG_1X_SCHEDULE_ERRORS = {
    ('ann', 'r101-d8_512x512_40k_voc12aug'): dict(max_iters=40000, val_interval=4000),
    ('deeplabv3plus', 'r18b-d8_769x769_80k_cityscapes'): dict(max_iters=80000,
                                                              val_interval=8000),
    ('deeplabv3', 'r101-d8_512x1024_80k_fp16_cityscapes'): dict(max_iters=80000,
                                                                val_interval=8000),
    ('fcn', 'r101-d8_480x480_80k_pascal_context'): dict(max_iters=80000, val_interval=8000),
    ('deeplabv3', 'r101-d8_480x480_80k_pascal_context_59'): dict(max_iters=80000,
                                                                 val_interval=8000),
}
# MMSeg's data set classes -> jseg's data sets (jseg.data.datasets); COCOStuffDataset by its
# data_root, MapillaryDataset_v1 by its class count (mapillary_v1_65.py drops 'Unlabeled').
MMSEG_DATASETS = {
    'CityscapesDataset': 'cityscapes', 'ADE20KDataset': 'ade20k', 'PascalVOCDataset': 'voc12aug',
    'PascalContextDataset': 'pascal_context', 'PascalContextDataset59': 'pascal_context_59',
    'LoveDADataset': 'loveda', 'PotsdamDataset': 'potsdam', 'ISPRSDataset': 'vaihingen',
    'iSAIDDataset': 'isaid', 'DarkZurichDataset': 'dark_zurich',
    'NightDrivingDataset': 'night_driving', 'MapillaryDataset_v1': 'mapillary_v1',
    'COCOStuffDataset': None,
}


def _method(path):
  return os.path.splitext(os.path.basename(path))[0]


ALL = [(_method(p), v) for p in CONFIG_FILES for v in jconfig.config_variants(p)
       if jconfig.split_variant(v).dataset not in jconfig.JSEG_DATASETS]  # jseg's own


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


def _jseg_dataset(dataset_cfg) -> str:
  """The jseg data set of an MMSeg dataloader's ``dataset``."""
  if dataset_cfg.type == 'ConcatDataset':  # VOC aug: VOC's train list + SBD's
    names = {_jseg_dataset(d) for d in dataset_cfg.datasets}
    assert len(names) == 1, names
    return names.pop()
  name = MMSEG_DATASETS[dataset_cfg.type]
  if dataset_cfg.type == 'COCOStuffDataset':
    name = os.path.basename(dataset_cfg.data_root.rstrip('/'))  # coco_stuff10k / 164k
  if name == 'mapillary_v1' and 'metainfo' in dataset_cfg:
    name += f'_{len(dataset_cfg.metainfo.classes)}'
  return name


def test_every_config_file_is_walked():
  assert {_method(p) for p in CONFIG_FILES} == set(METHODS)
  assert {m for m, _ in ALL} == set(METHODS)


def test_variants_cover_every_mmseg_config_of_the_13_methods():
  """Every MMSeg 1.2.2 config of the 13 methods is some variant's (test_config_equals_mmseg
  checks that variant's values), except the SKIPPED_MMSEG_CONFIGS; no two variants share one."""
  folders = {jconfig.MMSEG_NAMES.get(m, (m, m))[0] for m in METHODS}
  mmseg = {os.path.relpath(p, ref.CONFIG_ROOT) for f in folders
           for p in glob.glob(os.path.join(ref.CONFIG_ROOT, f, '*.py'))}
  assert len(mmseg) == 390  # MMSeg 1.2.2's
  covered = collections.Counter(jconfig.mmseg_config_name(m, v) for m, v in ALL)
  assert [name for name, n in covered.items() if n > 1] == []
  assert set(covered) <= mmseg, sorted(set(covered) - mmseg)
  assert set(SKIPPED_MMSEG_CONFIGS) <= mmseg
  assert sorted(mmseg - set(covered) - set(SKIPPED_MMSEG_CONFIGS)) == []
  assert not set(covered) & set(SKIPPED_MMSEG_CONFIGS)


def test_variant_names_round_trip():
  """split_variant reads every variant; its parts are the name's (nothing dropped)."""
  for path in CONFIG_FILES:
    for name in jconfig.config_variants(path):
      v = jconfig.split_variant(name)
      parts = set(name.split('_'))
      assert {v.backbone, v.crop, v.schedule} <= parts, (name, v)
      assert name.endswith('_' + v.dataset)
      assert all(p in parts for p in (v.head, v.pretrain, v.optimizer) if p), (name, v)
  with pytest.raises(ValueError, match='unknown part'):
    jconfig.split_variant('r50-d8_512x512_80k_sgd_ade20k')
  with pytest.raises(ValueError, match='no data set'):
    jconfig.split_variant('r50-d8_512x512_80k_kitti')


def test_mmseg_data_sets_are_jsegs():
  """Each MMSeg data set class a variant trains or tests on has its jseg data set's classes, in
  order (test_config_equals_mmseg checks each variant's zero reduction); the registered jseg
  data sets' class counts are :data:`DATASETS`'."""
  from mmseg.registry import DATASETS as MM_DATASETS
  for mm_name, name in MMSEG_DATASETS.items():
    names = ('coco_stuff10k', 'coco_stuff164k') if name is None else (name,)
    for name in names:
      info = datasets.dataset_info(name)
      assert info.classes == tuple(MM_DATASETS.get(mm_name).METAINFO['classes']), name
  for key, spec in jconfig.DATASETS.items():
    name = spec.data or key
    if key in jconfig.JSEG_DATASETS:
      continue
    assert datasets.dataset_info(spec.test_data or name).num_classes == spec.num_classes, key


@pytest.mark.parametrize('method,variant', ALL, ids=[f'{m}:{v}' for m, v in ALL])
def test_config_equals_mmseg(method, variant):
  c = jconfig.load(f'configs/{method}.py:{variant}')
  mm = ref.mmseg_config(method, variant)
  fix = MMSEG_1X_SCHEDULE_ERRORS.get((method, variant), {})
  mm.train_cfg.update(fix)
  if fix:  # its poly decay inherits the 20k end too
    mm.param_scheduler[0].end = fix['max_iters']
  mm_model = {k: v for k, v in mm.model.items()
              if k not in ('type', 'data_preprocessor', 'train_cfg', 'test_cfg')}
  init = mm.model.backbone.get('init_cfg')
  if init and init.type == 'Pretrained':  # the rsb rows: the backbone's weights from a file
    assert mm_model['pretrained'] is None
    mm_model['pretrained'] = init.checkpoint
    assert c.model.pretrained_prefix == init.prefix
  else:
    assert c.model.pretrained_prefix == ''
  _assert_same(c.model.to_dict(), mm_model, 'model')
  if 'type' in mm.model and mm.model.type != 'EncoderDecoder':
    assert c.model.type == mm.model.type
  _assert_same(c.test.to_dict(), mm.model.test_cfg, 'test')
  gpus = int(re.search(r'_(\d+)xb\d+-', ref.mmseg_config_path(method, variant)).group(1))
  assert c.train.batch_size == gpus * mm.train_dataloader.batch_size
  assert c.train.iterations == mm.train_cfg.max_iters
  assert c.train.eval_interval == mm.train_cfg.val_interval
  # The optimizer: SGD or AdamW, gradient clipping, the backbone's lr multiple.
  amp = mm.optim_wrapper.get('type') == 'AmpOptimWrapper'  # MMSeg's fp16 rows
  assert (c.precision == 'float16') == amp
  assert c.train.loss_scale == (mm.optim_wrapper.loss_scale if amp else None)
  opt = mm.optim_wrapper.optimizer
  assert c.train.optimizer == opt.type.lower()
  assert (c.train.lr, c.train.weight_decay) == (opt.lr, opt.weight_decay)
  if opt.type == 'SGD':
    assert c.train.momentum == opt.momentum
  else:  # AdamW's torch defaults are optax's
    assert (tuple(c.train.betas), opt.get('eps', 1e-8)) == (tuple(opt.get('betas', (0.9, 0.999))),
                                                           1e-8)
  clip = mm.optim_wrapper.get('clip_grad')
  assert c.train.clip_grad_norm == (clip.max_norm if clip else None)
  assert not clip or clip.get('norm_type', 2) == 2
  custom = (mm.optim_wrapper.get('paramwise_cfg') or {}).get('custom_keys', {})
  assert set(custom) <= {'backbone'}
  assert c.train.backbone_lr_mult == custom.get('backbone', {}).get('lr_mult', 1.0)
  assert custom.get('backbone', {}).get('decay_mult', 1.0) == 1.0
  # The learning rate schedule: a LinearLR warmup, then PolyLR or MultiStepLR.
  schedulers = list(mm.param_scheduler)
  assert not any(s.get('by_epoch', False) for s in schedulers)
  begin = 0
  if schedulers[0].type == 'LinearLR':
    warmup = schedulers.pop(0)
    assert (warmup.begin, warmup.get('end_factor', 1.0)) == (0, 1.0)
    assert (c.train.warmup_iters, c.train.warmup_start_factor) == (warmup.end, warmup.start_factor)
    begin = warmup.end
  else:
    assert c.train.warmup_iters == 0
  (sched,) = schedulers
  if sched.type == 'PolyLR':
    assert c.train.lr_schedule == 'poly'
    assert (c.train.poly_power, c.train.min_lr) == (sched.power, sched.eta_min)
    assert (sched.begin, sched.end) == (begin, c.train.schedule_end or c.train.iterations)
  else:
    assert (sched.type, c.train.lr_schedule) == ('MultiStepLR', 'step')
    assert (sched.begin, sched.end) == (begin, c.train.iterations)
    # mmengine counts the milestones from the scheduler's begin; jseg's are iterations.
    assert tuple(c.train.milestones) == tuple(begin + m for m in sched.milestones)
    assert c.train.gamma == sched.get('gamma', 0.1)
  # The data: what trains and tests, and the pipelines' values.
  assert tuple(c.data.crop_size) == tuple(mm.crop_size)
  assert tuple(c.data.mean) == tuple(mm.model.data_preprocessor.mean)
  assert tuple(c.data.std) == tuple(mm.model.data_preprocessor.std)
  assert c.data.dataset == _jseg_dataset(mm.train_dataloader.dataset)
  assert c.data.test_dataset == _jseg_dataset(mm.test_dataloader.dataset)
  info = datasets.dataset_info(c.data.test_dataset)
  assert (c.data.num_classes, c.data.reduce_zero_label) == (info.num_classes,
                                                            info.reduce_zero_label)
  train_steps = {t['type']: t for t in mm.train_pipeline}
  assert tuple(c.data.ratio_range) == tuple(train_steps['RandomResize']['ratio_range'])
  assert tuple(c.data.img_scale) == tuple(train_steps['RandomResize']['scale'])
  test_steps = {t['type']: t for t in mm.test_pipeline}
  assert tuple(c.data.test_img_scale) == tuple(test_steps['Resize']['scale'])
  assert c.data.cat_max_ratio == train_steps['RandomCrop']['cat_max_ratio']
  for steps in (train_steps, test_steps):
    assert c.data.reduce_zero_label == steps['LoadAnnotations'].get('reduce_zero_label', False)


def _architecture(model_cfg):
  """A model config without what does not change its layers' structure: the class count (one
  conv's width) and where the backbone's weights come from."""
  def strip(v):
    if isinstance(v, dict):
      return {k: strip(x) for k, x in v.items()
              if k not in ('num_classes', 'pretrained', 'pretrained_prefix')}
    if isinstance(v, tuple):
      return tuple(strip(x) for x in v)
    return v
  return repr(strip(_norm(model_cfg)))


def _backbone_cost(c):
  """Orders backbones by size: ResNet depth, HRNet width and modules."""
  bb = c.model.backbone
  if bb.type == 'HRNet':
    return (bb.extra.stage4.num_channels[0], sum(s.num_modules for s in bb.extra.values()))
  return (bb.depth,)


def _structure_groups():
  """The variants to build: one per distinct architecture (method, backbone, heads) up to the
  class count, and one per (method, class count) on the method's cheapest backbone with it.
  The class count only sets the width of the classifier convs, whose conversion the first
  group covers; building every (method, backbone, classes) would cost minutes."""
  architectures, classes = collections.OrderedDict(), collections.OrderedDict()
  for method, variant in ALL:
    c = jconfig.load(f'configs/{method}.py:{variant}')
    architectures.setdefault((method, _architecture(c.model.to_dict())), (method, variant))
    key = (method, c.data.num_classes)
    if key not in classes or _backbone_cost(c) < classes[key][0]:
      classes[key] = (_backbone_cost(c), (method, variant))
  picked = list(architectures.values())
  return picked + [mv for _, mv in classes.values() if mv not in picked]


STRUCTURES = _structure_groups()


@pytest.mark.parametrize('method,variant', STRUCTURES, ids=[f'{m}:{v}' for m, v in STRUCTURES])
def test_builds_and_converts_with_mmseg_parameter_count(method, variant):
  c = jconfig.load(f'configs/{method}.py:{variant}')
  with torch.device('meta'):  # shapes without values: MMSeg's random init took 0.6 s a model
    mm = ref.build_mmseg_model(ref.mmseg_config(method, variant).model)
  shapes = variable_shapes(c)
  n_params = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(shapes['params']))
  assert n_params == sum(p.numel() for p in mm.parameters())
  zeros = {k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in mm.state_dict().items()}
  variables = mmseg_to_jseg(zeros, c)  # every key and shape accounted for
  assert jax.tree_util.tree_structure(variables) == jax.tree_util.tree_structure(shapes)
