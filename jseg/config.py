"""Config loading and the recipe shared by every method's config file.

A config spec is ``PATH[:VARIANT]``, e.g.
``configs/pspnet.py:r101-d8_769x769_80k_cityscapes``. The variant is MMSeg v0.x's
config name without the method prefix: ``BACKBONE_CROP_SCHEDULE_DATASET``, with the extra parts
v0.x's names carry (:func:`split_variant`): ``d6_r50-d16_...`` (FCN-D6),
``r50-d8_rsb-pretrain_512x1024_adamw_80k_...``, ``..._4x4_512x512_...`` (4 GPUs x 4 images),
``..._fp16_...``, ``..._b16_...``.
"""
import importlib.util
import itertools
import os
import re
from typing import Dict, Iterable, NamedTuple, Optional, Tuple

import ml_collections

DEFAULT_VARIANT = 'r50-d8_512x1024_80k_cityscapes'


class DataSet(NamedTuple):
  """A data set's recipe in MMSeg's zoo: its ``_base_/datasets`` file, the schedules the zoo
  trains on it and what its configs change in the optimizer. Keyed in :data:`DATASETS` by the
  variant names' last part (v0.x's spelling, e.g. ``coco-stuff10k``)."""
  num_classes: Optional[int]   # None: the prepared data set's (``folder``)
  crops: Tuple[str, ...]       # crop sizes ('HxW') of its variants
  schedules: Tuple[str, ...]   # schedules ('80k') of its variants
  batch_size: int              # images per iteration (MMSeg: 4 GPUs x batch_size / 4 each)
  img_scale: Tuple[int, int]   # RandomResize's scale (train); the test Resize's unless test_scale
  test_scale: Optional[Tuple[int, int]] = None   # the test Resize's scale where it differs
  data: Optional[str] = None   # the jseg data set it trains on (jseg.data.datasets); None: the key
  test_data: Optional[str] = None   # the data set it is evaluated on; None: ``data``
  slide_stride: Optional[Tuple[int, int]] = None   # sliding-window test (window: the crop)
  train: Optional[dict] = None   # ``train.*`` values that differ from the SGD recipe
  mmseg: str = '{dataset}-{crop}'   # the data set part of MMSeg 1.x's config names
  name: str = '{backbone}_{crop}_{schedule}_{dataset}'   # v0.x's variant names


# v0.x names some rows by their GPUs x images per GPU, in one of two places.
_4X4 = '{backbone}_4x4_{crop}_{schedule}_{dataset}'
_COCO_4X4 = '{backbone}_{crop}_4x4_{schedule}_{dataset}'
DATASETS = {
    'cityscapes': DataSet(19, ('512x1024', '769x769'), ('40k', '80k'), 8, (2048, 1024)),
    'ade20k': DataSet(150, ('512x512',), ('80k', '160k'), 16, (2048, 512)),
    'voc12aug': DataSet(21, ('512x512',), ('20k', '40k'), 16, (2048, 512)),
    # Pascal Context (pascal_context.py / pascal_context_59.py): lr 0.004, weight decay 1e-4,
    # a 480x480 sliding window with stride 320.
    'pascal_context': DataSet(60, ('480x480',), ('40k', '80k'), 16, (520, 520),
                              slide_stride=(320, 320), train=dict(lr=0.004, weight_decay=1e-4),
                              mmseg='pascal-context-{crop}'),
    'pascal_context_59': DataSet(59, ('480x480',), ('40k', '80k'), 16, (520, 520),
                                 slide_stride=(320, 320),
                                 train=dict(lr=0.004, weight_decay=1e-4),
                                 mmseg='pascal-context-59-{crop}'),
    'coco-stuff10k': DataSet(171, ('512x512',), ('20k', '40k'), 16, (2048, 512),
                             data='coco_stuff10k', name=_COCO_4X4),
    'coco-stuff164k': DataSet(171, ('512x512',), ('80k', '160k', '320k'), 16, (2048, 512),
                              data='coco_stuff164k', name=_COCO_4X4),
    # LoveDA trains at (2048, 512) and tests at (1024, 1024), as MMSeg's loveda.py.
    'loveda': DataSet(7, ('512x512',), ('80k',), 16, (2048, 512), test_scale=(1024, 1024)),
    'potsdam': DataSet(6, ('512x512',), ('80k',), 16, (512, 512), name=_4X4),
    'vaihingen': DataSet(6, ('512x512',), ('80k',), 16, (512, 512), name=_4X4),
    'isaid': DataSet(16, ('896x896',), ('80k',), 16, (896, 896), name=_4X4),
    # Mapillary Vistas v1.2 without its 'Unlabeled' class (MMSeg's mapillary_v1_65.py: label 65
    # is ignored): AdamW, gradients clipped to norm 0.01, the backbone at a tenth of the lr, poly
    # decay to 0. MMSeg 1.x only (its config name spells it 'mapillay').
    'mapillary_v1_65': DataSet(65, ('1280x1280',), ('300k',), 8, (2048, 1024),
                               train=dict(optimizer='adamw', lr=1e-4, weight_decay=1e-4,
                                          min_lr=0.0, clip_grad_norm=0.01, backbone_lr_mult=0.1),
                               mmseg='mapillay_v1_65-{crop}'),
    # Evaluation-only sets: a Cityscapes-trained model tested at (1920, 1080) on Dark Zurich's /
    # Nighttime Driving's val images (v0.x ``*_dark.py`` / ``*_night_driving.py``).
    'dark': DataSet(19, ('512x1024',), ('40k', '80k'), 8, (2048, 1024), test_scale=(1920, 1080),
                    data='cityscapes', test_data='dark_zurich',
                    mmseg='cityscapes-{crop}_dark-zurich-1920x1080'),
    'night_driving': DataSet(19, ('512x1024',), ('40k', '80k'), 8, (2048, 1024),
                             test_scale=(1920, 1080), data='cityscapes', test_data='night_driving',
                             mmseg='cityscapes-{crop}_night-driving-1920x1080'),
    # jseg's procedural shapes (jseg/data/synthetic.py): the quick start; not in MMSeg's zoo.
    'synthetic': DataSet(6, ('64x64',), ('2k',), 16, (64, 64)),
    # A user's own data set (jseg/data/folder.py), named by ``data.dataset``; its class count
    # comes from the prepared data set (:func:`resolve_num_classes`). ADE20K's / VOC's recipe.
    'folder': DataSet(None, ('512x512',), ('20k', '40k'), 16, (2048, 512)),
}
# The data sets every backbone of a config file has variants on (``only`` may narrow them);
# the others are listed per config file (:func:`variants`' ``datasets``).
COMMON_DATASETS = ('cityscapes', 'ade20k', 'voc12aug', 'synthetic', 'folder')
# jseg's own data sets: no MMSeg config of these variants.
JSEG_DATASETS = ('synthetic', 'folder')
# Laptop-sized backbones: their ``folder`` variant is the quick start's (64x64 crop, 2k).
LAPTOP_BACKBONES = ('r18w16-d8',)

# ResNet backbone variants: depth, strides, dilations, multi_grid[, base channels]. ResNetV1c
# (deep stem, open-mmlab:// weights), except ``rNb`` (r50b-d8): MMSeg's ``ResNet`` (V1b:
# torchvision's 7x7 stem and weights). ``-dN``: output stride N (MMSeg's d32 rows keep the
# d8 dilations with every stage strided).
RESNETS = {
    # A quarter-width ResNet-18 (stem 32, stages 16..128 channels) for the quick start on
    # the synthetic set: trains on a laptop CPU in minutes. Not in MMSeg's zoo.
    'r18w16-d8': (18, (1, 2, 1, 1), (1, 1, 2, 4), None, 16),
    'r18': (18, (1, 2, 2, 2), (1, 1, 1, 1), None),  # not dilated (UperNet)
    'r50': (50, (1, 2, 2, 2), (1, 1, 1, 1), None),
    'r101': (101, (1, 2, 2, 2), (1, 1, 1, 1), None),
    'r18-d8': (18, (1, 2, 1, 1), (1, 1, 2, 4), None),
    'r50-d8': (50, (1, 2, 1, 1), (1, 1, 2, 4), None),
    'r101-d8': (101, (1, 2, 1, 1), (1, 1, 2, 4), None),
    'r101-d16-mg124': (101, (1, 2, 2, 1), (1, 1, 1, 2), (1, 2, 4)),
    'r18b-d8': (18, (1, 2, 1, 1), (1, 1, 2, 4), None),
    'r50b-d8': (50, (1, 2, 1, 1), (1, 1, 2, 4), None),
    'r101b-d8': (101, (1, 2, 1, 1), (1, 1, 2, 4), None),
    'r50-d16': (50, (1, 2, 2, 1), (1, 1, 1, 2), None),   # FCN-D6
    'r101-d16': (101, (1, 2, 2, 1), (1, 1, 1, 2), None),
    'r50b-d16': (50, (1, 2, 2, 1), (1, 1, 1, 2), None),
    'r101b-d16': (101, (1, 2, 2, 1), (1, 1, 1, 2), None),
    'r50-d32': (50, (1, 2, 2, 2), (1, 1, 2, 4), None),   # PSPNet's d32 rows
    'r50b-d32': (50, (1, 2, 2, 2), (1, 1, 2, 4), None),
}
# Backbone weights other than ImageNet's usual ones (v0.x ``<backbone>_<name>-pretrain``):
# (file, the prefix of its backbone's keys). MMSeg loads them as ``backbone.init_cfg``
# (``Pretrained``, ``prefix``) of a ``ResNet`` (V1b); jseg as ``model.pretrained`` with
# ``model.pretrained_prefix``.
PRETRAINS = {
    # timm's ResNet strikes back (A1) recipe, trained by mmcls: ResNet-50 only.
    'rsb-pretrain': ('https://download.openmmlab.com/mmclassification/v0/resnet/'
                     'resnet50_8xb256-rsb-a1-600e_in1k_20211228-20e21305.pth', 'backbone.'),
}
# Optimizer recipes a variant names (v0.x ``..._<crop>_adamw_<schedule>_...``): ``train.*``
# values. ``adamw``: PSPNet's rsb rows, AdamW clipped to norm 1, a linear warmup over 1000
# iterations from 1e-3 x lr, then x0.1 at iterations 61000 and 73000 (MMSeg's MultiStepLR
# milestones 60000 and 72000, counted from the warmup's end; they do not follow
# ``train.iterations``).
OPTIMIZERS = {
    'adamw': dict(optimizer='adamw', lr=5e-4, weight_decay=0.05, clip_grad_norm=1.0,
                  warmup_iters=1000, warmup_start_factor=1e-3, lr_schedule='step',
                  milestones=(61000, 73000)),
}


def _hrnet_extra(width: int, small: bool = False) -> dict:
  """MMSeg's HRNetV2 ``extra``: fcn_hr18.py's, with the hr18s (``small``) / hr48 overrides."""
  b = 2 if small else 4

  def stage(num_modules, n):
    return dict(num_modules=num_modules, num_branches=n, block='BASIC', num_blocks=(b,) * n,
                num_channels=tuple(width * 2**i for i in range(n)))

  return dict(stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK', num_blocks=(b,),
                          num_channels=(64,)),
              stage2=stage(1, 2), stage3=stage(3 if small else 4, 3),
              stage4=stage(2 if small else 3, 4))


# HRNetV2 backbone variants: MMSeg's ``extra`` stage settings.
HRNETS = {'hr18s': _hrnet_extra(18, small=True), 'hr18': _hrnet_extra(18),
          'hr48': _hrnet_extra(48)}
# MMSeg's ImageNet-pretrained HRNetV2 weights (``model.pretrained``; jseg/pretrained.py).
HRNET_PRETRAINED = {'hr18s': 'open-mmlab://msra/hrnetv2_w18_small',
                    'hr18': 'open-mmlab://msra/hrnetv2_w18', 'hr48': 'open-mmlab://msra/hrnetv2_w48'}


def variants(backbones: Iterable[str], only: Dict[str, Tuple[str, ...]] = None,
             schedules: Dict[str, Tuple[str, ...]] = None, crops: Dict[str, Tuple[str, ...]] = None,
             datasets: Iterable[str] = COMMON_DATASETS, names: Dict[str, str] = None):
  """Every variant name a config file accepts, in MMSeg's zoo.

  ``only`` restricts a backbone to names containing one of its patterns, e.g.
  ResNet-18 exists in the zoo for 80k Cityscapes only (every backbone trains on
  ``synthetic`` and ``folder``). ``schedules`` / ``crops``
  replace a dataset's usual ones (e.g. HRNet's 160k Cityscapes schedule). ``datasets``: the
  data sets (:data:`DATASETS` keys) to list, in this order; ``names`` replaces a data set's
  v0.x name template (e.g. ``{'potsdam': '{backbone}_{crop}_{schedule}_{dataset}'}``: v0.x's
  DeepLabV3+ and HRNet Potsdam names lack the ``4x4`` of PSPNet's).
  """
  names_ = []
  for bb in backbones:
    for ds in datasets:
      spec = DATASETS[ds]
      scheds = (schedules or {}).get(ds, spec.schedules)
      ds_crops = (crops or {}).get(ds, spec.crops)
      if ds == 'folder' and bb in LAPTOP_BACKBONES:
        ds_crops, scheds = DATASETS['synthetic'].crops, DATASETS['synthetic'].schedules
      template = (names or {}).get(ds, spec.name)
      for crop, sched in itertools.product(ds_crops, scheds):
        name = template.format(backbone=bb, crop=crop, schedule=sched, dataset=ds)
        if (only and bb in only and ds not in JSEG_DATASETS
            and not any(p in name for p in only[bb])):
          continue
        names_.append(name)
  return names_


# MMSeg's fp16 rows (v0.x ``<backbone>_<crop>_<schedule>_fp16_<dataset>``, 1.x ``*-amp-*``):
# AmpOptimWrapper with a static loss scale of 512, which jseg runs as precision=float16.
FP16_VARIANTS = ('r101-d8_512x1024_80k_fp16_cityscapes',)
FP16_LOSS_SCALE = 512.0


class Variant(NamedTuple):
  """The parts of a variant name (:func:`split_variant`)."""
  head: Optional[str]        # a head prefix: 'd6' (FCN-D6: the FCN heads' convs at dilation 6)
  backbone: str              # a RESNETS / HRNETS key
  pretrain: Optional[str]    # a PRETRAINS key
  crop: str                  # 'HxW'
  schedule: str              # '80k'
  optimizer: Optional[str]   # an OPTIMIZERS key
  batch: Optional[int]       # the global batch a name gives (``b16``), else the data set's
  fp16: bool
  dataset: str               # a DATASETS key

  @property
  def crop_size(self) -> Tuple[int, int]:
    h, w = self.crop.split('x')
    return int(h), int(w)

  @property
  def iterations(self) -> int:
    return int(self.schedule[:-1]) * 1000


_CROP, _GPUS_X_BATCH = re.compile(r'\d{2,}x\d{2,}'), re.compile(r'\dx\d')


def split_variant(name: str) -> Variant:
  """The parts of variant ``name``: ``[HEAD_]BACKBONE[_PRETRAIN]_[GxB_]CROP_[GxB_][OPTIMIZER_]
  SCHEDULE_[fp16_|bN_]DATASET``, where ``GxB`` (v0.x's ``4x4``: GPUs x images each) only
  repeats the data set's batch. ValueError for a part it does not know."""
  tokens = name.split('_')
  for n in (3, 2, 1):  # data set keys may hold underscores: the longest that matches
    if len(tokens) > n and '_'.join(tokens[-n:]) in DATASETS:
      dataset, tokens = '_'.join(tokens[-n:]), tokens[:-n]
      break
  else:
    raise ValueError(f'variant {name!r} ends in no data set of {sorted(DATASETS)}')
  head = tokens.pop(0) if re.fullmatch(r'd\d+', tokens[0]) else None
  backbone, tokens = tokens[0], tokens[1:]
  parts = dict(pretrain=None, crop=None, schedule=None, optimizer=None, batch=None, fp16=False)
  for t in tokens:
    if _CROP.fullmatch(t):
      key, value = 'crop', t
    elif re.fullmatch(r'\d+k', t):
      key, value = 'schedule', t
    elif t in PRETRAINS:
      key, value = 'pretrain', t
    elif t in OPTIMIZERS:
      key, value = 'optimizer', t
    elif re.fullmatch(r'b\d+', t):
      key, value = 'batch', int(t[1:])
    elif t == 'fp16':
      key, value = 'fp16', True
    elif _GPUS_X_BATCH.fullmatch(t):
      continue
    else:
      raise ValueError(f'variant {name!r}: unknown part {t!r}')
    if parts[key] not in (None, False):
      raise ValueError(f'variant {name!r}: two {key} parts')
    parts[key] = value
  if parts['crop'] is None or parts['schedule'] is None:
    raise ValueError(f'variant {name!r} has no crop (HxW) or no schedule (Nk)')
  return Variant(head=head, backbone=backbone, dataset=dataset, **parts)


# jseg config file -> (MMSeg config folder, MMSeg config name prefix), where they differ.
MMSEG_NAMES = {'hrnet': ('hrnet', 'fcn'), 'nonlocal_net': ('nonlocal_net', 'nonlocal')}
# MMSeg 1.x names that follow no rule: (method, variant) -> FOLDER/NAME.py.
MMSEG_IRREGULAR_NAMES = {
    ('pspnet', 'r50-d32_rsb-pretrain_512x1024_adamw_80k_cityscapes'):
        'pspnet/pspnet_r50-d32_rsb_4xb2-adamw-80k_cityscapes-512x1024.py',
}


def mmseg_config_name(method: str, variant: str) -> str:
  """``FOLDER/NAME.py`` of MMSeg 1.x's config for jseg's ``configs/METHOD.py:VARIANT``.

  ``BACKBONE_CROP_SCHEDULE_DATASET`` -> ``PREFIX_BACKBONE_BATCH-SCHEDULE_DATASET-CROP``; a
  variant naming its global batch (``..._b16_cityscapes``) gets ``8xb2`` for it, an fp16 one
  (``..._80k_fp16_cityscapes``) is MMSeg's ``...-amp-80k_...``, an optimizer one
  (``..._adamw_80k_...``) ``...-adamw-80k_...``; a head prefix joins the method's
  (``fcn-d6_...``), a pretrain the backbone's (``r50-d8-rsb``).
  """
  if (method, variant) in MMSEG_IRREGULAR_NAMES:
    return MMSEG_IRREGULAR_NAMES[method, variant]
  v = split_variant(variant)
  per_gpu = DATASETS[v.dataset].batch_size // 4
  batch = f'{(v.batch or 4 * per_gpu) // per_gpu}xb{per_gpu}'
  sched = '-'.join(p for p in ('amp' if v.fp16 else None, v.optimizer, v.schedule) if p)
  folder, prefix = MMSEG_NAMES.get(method, (method, method))
  prefix = f'{prefix}-{v.head}' if v.head else prefix
  backbone = f'{v.backbone}-{v.pretrain.split("-")[0]}' if v.pretrain else v.backbone
  data = DATASETS[v.dataset].mmseg.format(dataset=v.dataset, crop=v.crop)
  return f'{folder}/{prefix}_{backbone}_{batch}-{sched}_{data}.py'


def parse_variant(arg, valid) -> Variant:
  """The :class:`Variant` of name ``arg`` (default :data:`DEFAULT_VARIANT`), one of ``valid``."""
  arg = arg or DEFAULT_VARIANT
  if arg not in valid:
    raise ValueError(f'unknown config variant {arg!r}; valid variants:\n  ' + '\n  '.join(valid))
  return split_variant(arg)


def loss_decode(loss_weight: float = 1.0) -> dict:
  """MMSeg's ``CrossEntropyLoss`` settings of a head."""
  return dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=loss_weight,
              loss_name='loss_ce', avg_non_ignore=False, class_weight=None)


def _reduces_zero_label(name: str) -> bool:
  """Whether jseg's data set ``name`` reduces label 0 (its ``dataset_info``); False for one it
  does not know without a prepared copy (``folder``)."""
  from jseg.data import datasets
  if name not in datasets.BUILDERS or name == 'folder':
    return False
  return datasets.dataset_info(name).reduce_zero_label


def recipe(method: str, arg, valid) -> ml_collections.ConfigDict:
  """Config of ``method``'s variant ``arg`` without its heads: backbone, data, schedule, test."""
  v = parse_variant(arg, valid)
  spec = DATASETS[v.dataset]
  crop = v.crop_size
  laptop = crop == (64, 64)  # the synthetic quick start and its folder twin
  img_scale = DATASETS['synthetic'].img_scale if laptop else spec.img_scale
  align_corners = crop == (769, 769)
  if align_corners:  # MMSeg's 769x769 recipes resize to (2049, 1025)
    img_scale = (img_scale[0] + 1, img_scale[1] + 1)
  data_name = spec.data or v.dataset
  c = ml_collections.ConfigDict()
  c.name = f'{method}_{arg or DEFAULT_VARIANT}'
  c.seed = 0
  c.model = ml_collections.ConfigDict()
  if v.backbone in RESNETS:
    depth, strides, dilations, multi_grid, *width = RESNETS[v.backbone]
    # MMSeg's ResNet (V1b) for rNb and for the pretrains (mmcls' ResNet weights)
    v1b = v.backbone.split('-')[0] == f'r{depth}b' or v.pretrain is not None
    c.model.backbone = dict(type='ResNet' if v1b else 'ResNetV1c', depth=depth,
                            strides=strides, dilations=dilations, out_indices=(0, 1, 2, 3),
                            contract_dilation=True, multi_grid=multi_grid)
    c.model.pretrained = (None if width else PRETRAINS[v.pretrain][0] if v.pretrain
                          else f'torchvision://resnet{depth}' if v1b
                          else f'open-mmlab://resnet{depth}_v1c')
    if width:  # the laptop backbone learns faster from scratch with its residuals open
      c.model.backbone.update(base_channels=width[0], stem_channels=2 * width[0],
                              zero_init_residual=False)
  elif v.backbone in HRNETS:
    c.model.backbone = dict(type='HRNet', extra=HRNETS[v.backbone])
    c.model.pretrained = HRNET_PRETRAINED[v.backbone]
  if laptop or c.model.pretrained is None:
    # jseg's quick starts train from scratch; a typed None, so that
    # --config.model.pretrained=FILE can set one.
    c.model.pretrained = ml_collections.FieldReference(None, field_type=str)
  # The prefix of the backbone's keys in the ``pretrained`` file ('': the file is the backbone).
  c.model.pretrained_prefix = PRETRAINS[v.pretrain][1] if v.pretrain else ''
  # The synthetic shapes vary in size already: rescaling the 64-pixel images would only cut
  # them into ambiguous fragments, so its recipe keeps flips and photometric distortion.
  ratio_range = (1.0, 1.0) if v.dataset == 'synthetic' else (0.5, 2.0)
  # Values that others derive from are FieldReferences: --config.data.num_classes=5 reaches
  # every head, --config.train.iterations=1000 the intervals, --config.data.crop_size the test,
  # --config.data.img_scale / data.dataset the test's (a derived value set itself stops
  # following).
  dataset = ml_collections.FieldReference(data_name, str)
  img_scale = ml_collections.FieldReference(img_scale, tuple)
  c.data = dict(dataset=dataset, num_classes=ml_collections.FieldReference(spec.num_classes, int),
                crop_size=crop, img_scale=img_scale, ratio_range=ratio_range,
                cat_max_ratio=0.75, mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375),
                ignore_index=255, reduce_zero_label=_reduces_zero_label(data_name),
                # What the model is evaluated on and at which scale (the test pipeline's
                # Resize): the training set and img_scale, except where MMSeg's test pipeline
                # differs (LoveDA; the Dark Zurich / Nighttime Driving rows).
                test_dataset=spec.test_data or dataset.identity(),
                test_img_scale=(spec.test_scale if spec.test_scale and not laptop
                                else img_scale.identity()),
                # 0: the training pipelines run in threads; N: in N grain worker processes
                # (jseg.data.loader.train_batches; the same batches, for a GIL-bound host).
                worker_processes=0)
  # MMSeg sets align_corners in every head; jseg's heads read this one key.
  c.model.align_corners = align_corners
  crop = c.data.get_ref('crop_size')
  stride = (513, 513) if align_corners else spec.slide_stride
  c.test = dict(mode='slide' if stride else 'whole', crop_size=crop.identity(),
                stride=stride or crop.identity())
  iters_ref = ml_collections.FieldReference(v.iterations)
  c.train = dict(optimizer='sgd', batch_size=v.batch or spec.batch_size, iterations=iters_ref,
                 lr=0.01, momentum=0.9, weight_decay=5e-4, poly_power=0.9, min_lr=1e-4,
                 eval_interval=iters_ref // 10, checkpoint_interval=iters_ref // 40,
                 log_interval=50, keep_checkpoints=3, nan_policy='stop', max_consecutive_skips=10,
                 remat='none')
  # AdamW's (b1, b2) (the momentum is SGD's).
  c.train.betas = (0.9, 0.999)
  # The largest global L2 norm of the gradients (clipped to it; MMSeg's clip_grad max_norm);
  # None: not clipped.
  c.train.clip_grad_norm = ml_collections.FieldReference(None, field_type=float)
  # The backbone's learning rate as a multiple of ``lr`` (MMSeg's paramwise_cfg lr_mult for
  # 'backbone', with decay_mult 1: AdamW's decoupled decay follows the backbone's lr).
  c.train.backbone_lr_mult = 1.0
  # 'poly' (MMSeg's PolyLR to min_lr) or 'step' (MultiStepLR: x gamma from each of the
  # ``milestones``, absolute iterations); after a linear warmup over ``warmup_iters`` from
  # warmup_start_factor x lr (MMSeg's LinearLR), if any.
  c.train.lr_schedule = 'poly'
  c.train.milestones = ()
  c.train.gamma = 0.1
  c.train.warmup_iters = 0
  c.train.warmup_start_factor = 1e-3
  c.train.update(spec.train or {})
  if v.optimizer:
    c.train.update(OPTIMIZERS[v.optimizer])
  # What convolutions, matmuls and resizes compute in (jseg.models.build_segmentor): float32
  # (MMSeg's numbers), bfloat16 or float16 (parameters, statistics, softmax and losses stay
  # float32).
  c.precision = 'float32'
  # 'dynamic', a static scale (MMSeg's fp16 rows: 512.) or None: dynamic for float16, else none
  # (jseg.loss_scale).
  c.train.loss_scale = ml_collections.FieldReference(None, field_type=object)
  # Where the poly decay ends; None: at ``iterations`` (also when that is overridden).
  c.train.schedule_end = ml_collections.FieldReference(None, field_type=int)
  # Devices per image (jseg.train.make_mesh): each image's rows split over ``spatial`` devices,
  # for images larger than one device holds; 1: data parallel only.
  c.mesh = dict(spatial=1)
  if laptop:  # from scratch in minutes: AdamW learns the shapes far faster
    c.train.update(optimizer='adamw', lr=3e-3, weight_decay=1e-4, min_lr=1e-5)
  if v.fp16:
    c.precision, c.train.loss_scale = 'float16', FP16_LOSS_SCALE
  return c


def head(c, type: str, **kwargs) -> dict:
  """A head config with the recipe's classes, align_corners, ignore_index and loss (weight 1),
  the first three referenced: they follow ``data.num_classes`` / ``model.align_corners`` /
  ``data.ignore_index`` when those are overridden."""
  return dict(type=type, num_classes=c.data.get_ref('num_classes'),
              align_corners=c.model.get_ref('align_corners'),
              ignore_index=c.data.get_ref('ignore_index'), loss_decode=loss_decode(1.0), **kwargs)


def fcn_aux_head(c, in_channels: int, channels: int, **kwargs) -> dict:
  """The auxiliary FCNHead on stage 3 that the ResNet recipes train with (weight 0.4);
  ``kwargs``: other FCNHead options (FCN-D6's ``dilation``)."""
  aux = head(c, 'FCNHead', in_channels=in_channels, in_index=2, channels=channels,
             num_convs=1, concat_input=False, dropout_ratio=0.1, **kwargs)
  aux['loss_decode'] = loss_decode(0.4)
  return aux


def hrnet_fcn_head(c, loss_weight: float = 1.0) -> dict:
  """HRNetV2's FCNHead: one 1x1 ConvModule on the ``resize_concat`` of the four branches."""
  widths = tuple(c.model.backbone.extra.stage4.num_channels)
  fcn = head(c, 'FCNHead', in_channels=widths, in_index=(0, 1, 2, 3), channels=sum(widths),
             input_transform='resize_concat', kernel_size=1, num_convs=1, concat_input=False,
             dropout_ratio=-1)
  fcn['loss_decode'] = loss_decode(loss_weight)
  return fcn


def resnet_widths(backbone_cfg) -> Tuple[int, int, int, int]:
  """(stage-4 channels, head channels, stage-3 channels, aux channels) of MMSeg's configs:
  the heads take a quarter of the channels of the stage they read."""
  expansion = 1 if backbone_cfg.depth < 50 else 4
  c4 = backbone_cfg.get('base_channels', 64) * 8 * expansion
  return c4, c4 // 4, c4 // 2, c4 // 8


def resolve_num_classes(config, data_dir=None) -> ml_collections.ConfigDict:
  """``config`` with ``data.num_classes`` taken from its data set where the config leaves it
  None (the ``folder`` variants: the prepared data set's metadata); a value that disagrees
  with the data set's class count raises ValueError naming both."""
  from jseg.data import datasets
  name, num_classes = config.data.dataset, config.data.num_classes
  try:
    info = datasets.dataset_info(name, data_dir)
  except FileNotFoundError:
    if num_classes is None:  # the error names the prepare command
      raise
    return config  # e.g. predicting with a folder model where its data is not prepared
  if num_classes is None:
    config.data.num_classes = info.num_classes
  elif num_classes != info.num_classes:
    raise ValueError(f'data.num_classes={num_classes}, but data set {name!r} has '
                     f'{info.num_classes} classes ({", ".join(info.classes[:5])}, ...): '
                     f'set --config.data.num_classes={info.num_classes}, or use a '
                     f'*_folder variant, which takes it from the data set')
  return config


def config_module(path: str, spec: str):
  if not os.path.isfile(path):
    raise FileNotFoundError(f'config file {path!r} does not exist (from spec {spec!r})')
  module_spec = importlib.util.spec_from_file_location(
      os.path.splitext(os.path.basename(path))[0], path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module


def config_variants(path: str) -> Tuple[str, ...]:
  """The variant names that config file ``path`` accepts."""
  return tuple(config_module(path, path).VARIANTS)


def load(spec: str) -> ml_collections.ConfigDict:
  """Loads ``PATH[:VARIANT]`` and returns the locked ConfigDict."""
  path, _, arg = spec.partition(':')
  config = config_module(path, spec).get_config(arg or None)
  config.lock()
  return config
