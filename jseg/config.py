"""Config loading and the recipe shared by every method's config file.

A config spec is ``PATH[:VARIANT]``, e.g.
``configs/pspnet.py:r101-d8_769x769_80k_cityscapes``. The variant is MMSeg v0.x's
config name without the method prefix: ``BACKBONE_CROP_SCHEDULE_DATASET``.
"""
import importlib.util
import itertools
import os
from typing import Dict, Iterable, Tuple

import ml_collections

DEFAULT_VARIANT = 'r50-d8_512x1024_80k_cityscapes'

# dataset -> (num_classes, crops, schedules, images per iteration, test scale)
DATASETS = {
    'cityscapes': (19, ('512x1024', '769x769'), ('40k', '80k'), 8, (2048, 1024)),
    'ade20k': (150, ('512x512',), ('80k', '160k'), 16, (2048, 512)),
    'voc12aug': (21, ('512x512',), ('20k', '40k'), 16, (2048, 512)),
    # jseg's procedural shapes (jseg/data/synthetic.py): the quick start; not in MMSeg's zoo.
    'synthetic': (6, ('64x64',), ('2k',), 16, (64, 64)),
    # A user's own data set (jseg/data/folder.py), named by ``data.dataset``; its class count
    # comes from the prepared data set (:func:`resolve_num_classes`). ADE20K's / VOC's recipe.
    'folder': (None, ('512x512',), ('20k', '40k'), 16, (2048, 512)),
}
# jseg's own data sets: no MMSeg config of these variants.
JSEG_DATASETS = ('synthetic', 'folder')
# Laptop-sized backbones: their ``folder`` variant is the quick start's (64x64 crop, 2k).
LAPTOP_BACKBONES = ('r18w16-d8',)

# ResNet backbone variants: depth, strides, dilations, multi_grid[, base channels]. ResNetV1c
# (deep stem, open-mmlab:// weights), except ``rNb`` (r50b-d8): MMSeg's ``ResNet`` (V1b:
# torchvision's 7x7 stem and weights).
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
             schedules: Dict[str, Tuple[str, ...]] = None, crops: Dict[str, Tuple[str, ...]] = None):
  """Every variant name a config file accepts, in MMSeg's zoo.

  ``only`` restricts a backbone to names containing one of its patterns, e.g.
  ResNet-18 exists in the zoo for 80k Cityscapes only (every backbone trains on
  ``synthetic`` and ``folder``). ``schedules`` / ``crops``
  replace a dataset's usual ones (e.g. HRNet's 160k Cityscapes schedule).
  """
  names = []
  for bb in backbones:
    for ds, (_, ds_crops, scheds, _, _) in DATASETS.items():
      scheds = (schedules or {}).get(ds, scheds)
      ds_crops = (crops or {}).get(ds, ds_crops)
      if ds == 'folder' and bb in LAPTOP_BACKBONES:
        ds_crops, scheds = DATASETS['synthetic'][1:3]
      for crop, sched in itertools.product(ds_crops, scheds):
        name = f'{bb}_{crop}_{sched}_{ds}'
        if (only and bb in only and ds not in JSEG_DATASETS
            and not any(p in name for p in only[bb])):
          continue
        names.append(name)
  return names


# MMSeg's fp16 rows (v0.x ``<backbone>_<crop>_<schedule>_fp16_<dataset>``, 1.x ``*-amp-*``):
# AmpOptimWrapper with a static loss scale of 512, which jseg runs as precision=float16.
FP16_VARIANTS = ('r101-d8_512x1024_80k_fp16_cityscapes',)
FP16_LOSS_SCALE = 512.0


# MMSeg 1.x names the global batch as GPUs x images per GPU.
MMSEG_BATCH = {'cityscapes': '4xb2', 'ade20k': '4xb4', 'voc12aug': '4xb4'}
# jseg config file -> (MMSeg config folder, MMSeg config name prefix), where they differ.
MMSEG_NAMES = {'hrnet': ('hrnet', 'fcn'), 'nonlocal_net': ('nonlocal_net', 'nonlocal')}


def mmseg_config_name(method: str, variant: str) -> str:
  """``FOLDER/NAME.py`` of MMSeg 1.x's config for jseg's ``configs/METHOD.py:VARIANT``.

  ``BACKBONE_CROP_SCHEDULE_DATASET`` -> ``PREFIX_BACKBONE_BATCH-SCHEDULE_DATASET-CROP``; a
  variant naming its global batch (``..._b16_cityscapes``) gets ``8xb2`` for it, an fp16 one
  (``..._80k_fp16_cityscapes``) is MMSeg's ``...-amp-80k_...``.
  """
  parts = variant.split('_')
  backbone, crop, sched, dataset = parts[:3] + parts[-1:]
  batch = MMSEG_BATCH[dataset]
  if len(parts) == 5 and parts[3] == 'fp16':
    sched = f'amp-{sched}'
  elif len(parts) == 5:
    per_gpu = int(batch.split('xb')[1])
    batch = f'{int(parts[3][1:]) // per_gpu}xb{per_gpu}'
  folder, prefix = MMSEG_NAMES.get(method, (method, method))
  return f'{folder}/{prefix}_{backbone}_{batch}-{sched}_{dataset}-{crop}.py'


def parse_variant(arg, valid):
  """Splits a variant name into (backbone, crop (h, w), iterations, dataset); an ``_fp16``
  part (:data:`FP16_VARIANTS`) is left to :func:`recipe`."""
  arg = arg or DEFAULT_VARIANT
  if arg not in valid:
    raise ValueError(f'unknown config variant {arg!r}; valid variants:\n  ' + '\n  '.join(valid))
  backbone, crop, sched, dataset = arg.replace('_fp16_', '_').split('_')
  h, w = (int(v) for v in crop.split('x'))
  return backbone, (h, w), int(sched[:-1]) * 1000, dataset


def loss_decode(loss_weight: float = 1.0) -> dict:
  """MMSeg's ``CrossEntropyLoss`` settings of a head."""
  return dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=loss_weight,
              loss_name='loss_ce', avg_non_ignore=False, class_weight=None)


def recipe(method: str, arg, valid) -> ml_collections.ConfigDict:
  """Config of ``method``'s variant ``arg`` without its heads: backbone, data, schedule, test."""
  backbone, crop, iters, dataset = parse_variant(arg, valid)
  num_classes, _, _, batch_size, test_scale = DATASETS[dataset]
  laptop = crop == (64, 64)  # the synthetic quick start and its folder twin
  if laptop:
    test_scale = DATASETS['synthetic'][4]
  align_corners = crop == (769, 769)
  c = ml_collections.ConfigDict()
  c.name = f'{method}_{arg or DEFAULT_VARIANT}'
  c.seed = 0
  c.model = ml_collections.ConfigDict()
  if backbone in RESNETS:
    depth, strides, dilations, multi_grid, *width = RESNETS[backbone]
    v1b = backbone.split('-')[0] == f'r{depth}b'
    c.model.backbone = dict(type='ResNet' if v1b else 'ResNetV1c', depth=depth,
                            strides=strides, dilations=dilations, out_indices=(0, 1, 2, 3),
                            contract_dilation=True, multi_grid=multi_grid)
    c.model.pretrained = (None if width else f'torchvision://resnet{depth}' if v1b
                          else f'open-mmlab://resnet{depth}_v1c')
    if width:  # the laptop backbone learns faster from scratch with its residuals open
      c.model.backbone.update(base_channels=width[0], stem_channels=2 * width[0],
                              zero_init_residual=False)
  elif backbone in HRNETS:
    c.model.backbone = dict(type='HRNet', extra=HRNETS[backbone])
    c.model.pretrained = HRNET_PRETRAINED[backbone]
  if laptop or c.model.pretrained is None:
    # jseg's quick starts train from scratch; a typed None, so that
    # --config.model.pretrained=FILE can set one.
    c.model.pretrained = ml_collections.FieldReference(None, field_type=str)
  if align_corners:  # MMSeg's 769x769 recipes resize to (2049, 1025)
    test_scale = (test_scale[0] + 1, test_scale[1] + 1)
  # The synthetic shapes vary in size already: rescaling the 64-pixel images would only cut
  # them into ambiguous fragments, so its recipe keeps flips and photometric distortion.
  ratio_range = (1.0, 1.0) if dataset == 'synthetic' else (0.5, 2.0)
  # Values that others derive from are FieldReferences: --config.data.num_classes=5 reaches
  # every head, --config.train.iterations=1000 the intervals, --config.data.crop_size the test
  # (a derived value set itself stops following).
  c.data = dict(dataset=dataset, num_classes=ml_collections.FieldReference(num_classes, int),
                crop_size=crop, img_scale=test_scale, ratio_range=ratio_range,
                cat_max_ratio=0.75, mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375),
                ignore_index=255, reduce_zero_label=dataset == 'ade20k',
                # 0: the training pipelines run in threads; N: in N grain worker processes
                # (jseg.data.loader.train_batches; the same batches, for a GIL-bound host).
                worker_processes=0)
  # MMSeg sets align_corners in every head; jseg's heads read this one key.
  c.model.align_corners = align_corners
  crop = c.data.get_ref('crop_size')
  c.test = dict(mode='slide' if align_corners else 'whole', crop_size=crop.identity(),
                stride=(513, 513) if align_corners else crop.identity())
  iters_ref = ml_collections.FieldReference(iters)
  c.train = dict(optimizer='sgd', batch_size=batch_size, iterations=iters_ref, lr=0.01,
                 momentum=0.9, weight_decay=5e-4, poly_power=0.9, min_lr=1e-4,
                 eval_interval=iters_ref // 10, checkpoint_interval=iters_ref // 40,
                 log_interval=50, keep_checkpoints=3, nan_policy='stop', max_consecutive_skips=10,
                 remat='none')
  # What convolutions, matmuls and resizes compute in (jseg.models.build_segmentor): float32
  # (MMSeg's numbers), bfloat16 or float16 (parameters, statistics, softmax and losses stay
  # float32).
  c.precision = 'float32'
  # 'dynamic', a static scale (MMSeg's fp16 rows: 512.) or None: dynamic for float16, else none
  # (jseg.loss_scale).
  c.train.loss_scale = ml_collections.FieldReference(None, field_type=object)
  # Where the poly decay ends; None: at ``iterations`` (also when that is overridden).
  c.train.schedule_end = ml_collections.FieldReference(None, field_type=int)
  if laptop:  # from scratch in minutes: AdamW learns the shapes far faster
    c.train.update(optimizer='adamw', lr=3e-3, weight_decay=1e-4, min_lr=1e-5)
  if '_fp16_' in c.name:
    c.precision, c.train.loss_scale = 'float16', FP16_LOSS_SCALE
  return c


def head(c, type: str, **kwargs) -> dict:
  """A head config with the recipe's classes, align_corners, ignore_index and loss (weight 1),
  the first three referenced: they follow ``data.num_classes`` / ``model.align_corners`` /
  ``data.ignore_index`` when those are overridden."""
  return dict(type=type, num_classes=c.data.get_ref('num_classes'),
              align_corners=c.model.get_ref('align_corners'),
              ignore_index=c.data.get_ref('ignore_index'), loss_decode=loss_decode(1.0), **kwargs)


def fcn_aux_head(c, in_channels: int, channels: int) -> dict:
  """The auxiliary FCNHead on stage 3 that the ResNet recipes train with (weight 0.4)."""
  aux = head(c, 'FCNHead', in_channels=in_channels, in_index=2, channels=channels,
             num_convs=1, concat_input=False, dropout_ratio=0.1)
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


def _module(path: str, spec: str):
  if not os.path.isfile(path):
    raise FileNotFoundError(f'config file {path!r} does not exist (from spec {spec!r})')
  module_spec = importlib.util.spec_from_file_location(
      os.path.splitext(os.path.basename(path))[0], path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module


def config_variants(path: str) -> Tuple[str, ...]:
  """The variant names that config file ``path`` accepts."""
  return tuple(_module(path, path).VARIANTS)


def load(spec: str) -> ml_collections.ConfigDict:
  """Loads ``PATH[:VARIANT]`` and returns the locked ConfigDict."""
  path, _, arg = spec.partition(':')
  config = _module(path, spec).get_config(arg or None)
  config.lock()
  return config
