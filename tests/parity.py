"""The MMSeg parity harness shared by the test_parity_* files (and other tests).

``pair`` builds a jseg config and an MMSeg model with random weights;
``assert_eval_logits_equal`` and ``assert_train_losses_equal`` compare them in eval and
train mode; ``module_variables`` converts a bare MMSeg / mmcv module for block-level tests.
"""
import copy

import flax
import jax
import jax.numpy as jnp
import numpy as np
import torch

import fast_compile
import mmseg_ref as ref
from jseg import config as jconfig
from jseg.convert import mmseg_key, mmseg_to_jseg
from jseg.models import build_segmentor, segmentor_loss
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

IGNORE = 255
ODD, EVEN = (97, 131), (64, 80)  # stride-8 features 13x17 (odd) and 8x10 (even)
SIZES = (ODD, EVEN)
FCN_R18 = ('fcn', 'r18-d8_512x1024_80k_cityscapes')


def _heads(model_cfg):
  """The decode head(s) (a list for a cascade) and the auxiliary head, if any."""
  heads = model_cfg.decode_head
  heads = list(heads) if isinstance(heads, (list, tuple)) else [heads]
  aux = model_cfg.get('auxiliary_head')
  return heads + (list(aux) if isinstance(aux, (list, tuple)) else [aux] if aux else [])


# ResNet-50's stage widths -> ResNet-18's: the heads' inputs on a ResNet-18 backbone.
_R18_WIDTHS = {256: 64, 512: 128, 1024: 256, 2048: 512}


def nonzero_params(variables, seed: int = 1):
  """``variables`` with its all-zero parameters (the attention heads' gamma, biases) drawn as
  0.1 x normal noise: at 0 they would leave whole branches out of a comparison."""
  leaves, tree = jax.tree_util.tree_flatten(variables['params'])
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  params = jax.tree_util.tree_unflatten(tree, [
      0.1 * jax.random.normal(k, p.shape, p.dtype) if not p.any() else p
      for k, p in zip(keys, leaves)])
  return {**variables, 'params': params}


def on_resnet18(*model_cfgs):
  """Puts the heads of ResNet-50 model configs (jseg's, MMSeg's) on a ResNet-18 backbone, in
  place: the heads' input widths follow, everything else stays."""
  for cfg in model_cfgs:
    assert cfg.backbone.depth == 50, cfg.backbone
    cfg.backbone.depth = 18
    for head in _heads(cfg):
      c = head.in_channels
      head.in_channels = (tuple(_R18_WIDTHS[i] for i in c) if isinstance(c, (list, tuple))
                          else _R18_WIDTHS[c])


def one_module_hrnet(*model_cfgs):
  """HRNetV2 model configs (jseg's, MMSeg's) with one module per stage and one block per
  branch, in place: every kind of HRNet layer (branches, fuse layers, transitions, the
  multi-scale output) at a fraction of the compile time."""
  for cfg in model_cfgs:
    assert cfg.backbone.type == 'HRNet', cfg.backbone
    for name in ('stage1', 'stage2', 'stage3', 'stage4'):
      stage = cfg.backbone.extra[name]
      stage['num_modules'] = 1
      stage['num_blocks'] = (1,) * stage['num_branches']


def pair(method, variant, seed=0, dropout=True, resnet18=False, small_hrnet=False):
  """(jseg config, MMSeg torch model) with the same random weights, after conversion.

  ``dropout=False`` turns every head's dropout off in both (for train-mode comparisons).
  ``resnet18=True``: :func:`on_resnet18` in both, ``small_hrnet=True``: :func:`one_module_hrnet`
  in both, for tests that pay per layer.
  """
  config = copy.deepcopy(jconfig.load(f'configs/{method}.py:{variant}'))
  config.unlock()
  mm_cfg = ref.mmseg_config(method, variant).model
  if resnet18:
    on_resnet18(config.model, mm_cfg)
  if small_hrnet:
    one_module_hrnet(config.model, mm_cfg)
  if not dropout:
    for head in _heads(config.model) + _heads(mm_cfg):
      head.dropout_ratio = 0 if isinstance(head.dropout_ratio, int) else 0.0
  model = ref.random_mmseg_model(mm_cfg, seed)
  if not dropout and method == 'ann':
    # MMSeg's ANNHead calls self.dropout unconditionally; it is None at ratio 0.
    model.decode_head.dropout = torch.nn.Identity()
  return config, model


def mmseg_fcn(config, seed=0):
  """MMSeg's FCN (Cityscapes R-18 config) with a jseg FCN config's widths, classes and
  align_corners, random weights, in eval mode."""
  cfg = ref.mmseg_config(*FCN_R18).model
  bb = config.model.backbone
  cfg.backbone.update(base_channels=bb.base_channels, stem_channels=bb.stem_channels)
  for name in ('decode_head', 'auxiliary_head'):
    head = config.model[name]
    cfg[name].update(in_channels=head.in_channels, channels=head.channels,
                     num_classes=head.num_classes, align_corners=head.align_corners)
  return ref.random_mmseg_model(cfg, seed).eval()


def random_labels(rng, n, h, w, num_classes, all_ignored=()):
  """Labels with ~20% ignored pixels; the images ``all_ignored`` are ignored entirely."""
  labels = rng.integers(0, num_classes, (n, h, w))
  labels[rng.random((n, h, w)) < 0.2] = IGNORE
  for i in all_ignored:
    labels[i] = IGNORE
  return labels


def data_samples(labels):
  """MMSeg SegDataSamples holding ``labels`` (N, H, W)."""
  return [SegDataSample(gt_sem_seg=PixelData(data=torch.from_numpy(l[None].astype(np.int64))))
          for l in labels]


# float32 tolerances, relative to float64: jseg's float32 results may deviate from MMSeg's float64
# ones by FACTOR times MMSeg's own float32 deviation (measured in the same test, on the same CPU),
# and always by FLOOR. A fixed tolerance tuned on one CPU failed on another. Measured here, the
# ratio jseg / MMSeg is 0.3-2.5 for logits and BN statistics (each a maximum over many values).
FACTOR, FLOOR = 10.0, 1e-6


def float64(mm):
  """A float64 copy of MMSeg model ``mm`` (same weights, statistics and mode)."""
  return copy.deepcopy(mm).double()


def assert_as_close_as_mmseg(what, err, own):
  """jseg's float32 error ``err`` (from MMSeg's float64 result) is within FACTOR times MMSeg's
  own float32 error ``own``, or within FLOOR."""
  message = (f'{what}: jseg float32 {err:.2e} from MMSeg float64 '
             f'(MMSeg float32 {own:.2e}, allowed {max(FACTOR * own, FLOOR):.2e})')
  print(message)
  assert err <= max(FACTOR * own, FLOOR), message


def assert_eval_logits_equal(config, mm, sizes=SIZES):
  """Eval-mode logits of a batch of two at each (H, W) of ``sizes`` equal MMSeg's
  ``encode_decode``: as close to MMSeg's float64 logits as MMSeg's float32 ones are."""
  mm.eval()
  mm64 = float64(mm)
  variables = mmseg_to_jseg(mm.state_dict(), config)
  apply = fast_compile.jit(build_segmentor(config).apply)
  rng = np.random.default_rng(0)
  for h, w in sizes:
    x = rng.standard_normal((2, h, w, 3)).astype(np.float32)
    metas = [dict(img_shape=(h, w))] * 2
    with torch.no_grad():
      want = ref.nhwc(mm.encode_decode(ref.nchw(x), metas))
      want64 = ref.nhwc(mm64.encode_decode(ref.nchw(x).double(), metas))
    got = np.asarray(apply(variables, jnp.asarray(x)))
    assert got.shape == want.shape == (2, h, w, config.data.num_classes)
    assert_as_close_as_mmseg(f'{config.name} {h}x{w} logits', ref.rel_err(got, want64),
                             ref.rel_err(want, want64))


def _worst_leaf(errs):
  """(largest error, its path) of a tree of errors."""
  return max((e, '/'.join(p)) for p, e in
             flax.traverse_util.flatten_dict(flax.core.unfreeze(errs)).items())


def assert_train_losses_equal(config, mm, all_ignored=(), must_have=(), max_flipped=2):
  """Train mode (batch statistics) on a 2x97x131 batch with ignored pixels: the same loss
  terms and, after it, the same BN running statistics, as close to MMSeg's float64 values as
  MMSeg's float32 ones are. The yardstick is MMSeg's worst float32 deviation over all of them:
  a single loss is one draw of rounding noise (a ratio of two such draws is unbounded), the
  statistics' maximum over many values is stable.

  ``all_ignored``: images whose every pixel is ignored. ``must_have``: loss keys that must be
  among them. acc_seg may differ from float64's by ``max_flipped`` pixels more than MMSeg's
  float32 one does (near-tie argmaxes).
  """
  mm.train()
  mm64 = float64(mm)
  variables = mmseg_to_jseg(mm.state_dict(), config)
  rng = np.random.default_rng(1)
  n, h, w = 2, 97, 131
  x = rng.standard_normal((n, h, w, 3)).astype(np.float32)
  labels = random_labels(rng, n, h, w, config.data.num_classes, all_ignored)
  with torch.no_grad():
    want = mm.loss(ref.nchw(x), data_samples(labels))
    want64 = mm64.loss(ref.nchw(x).double(), data_samples(labels))
  seg = build_segmentor(config)
  outputs, updates = fast_compile.jit(
      lambda v, x: seg.apply(v, x, train=True, mutable=['batch_stats']))(variables, jnp.asarray(x))
  got = segmentor_loss(config.model, outputs, jnp.asarray(labels))
  assert set(got) == set(want)
  assert set(must_have) <= set(got), sorted(got)
  # BN running statistics after one training forward (torch: momentum 0.1, unbiased var).
  # A BN used twice (ANN's APNB key/query projection, OCRNet's FCN stage run again by
  # MMSeg's cascade) updates twice in both.
  new32, new64 = (mmseg_to_jseg(m.state_dict(), config, jnp.float64)['batch_stats']
                  for m in (mm, mm64))
  own_bn, own_path = _worst_leaf(jax.tree_util.tree_map(ref.rel_err, new32, new64))
  losses = sorted(k for k in want if not k.endswith('acc_seg'))
  own = max([own_bn] + [ref.rel_err(want[k].numpy(), want64[k].numpy()) for k in losses])
  print(f'{config.name}: MMSeg float32 worst deviation {own:.2e} (BN: {own_path} {own_bn:.2e})')
  for key in losses:
    assert_as_close_as_mmseg(f'{config.name} {key}', ref.rel_err(got[key], want64[key].numpy()),
                             own)
  err, path = _worst_leaf(jax.tree_util.tree_map(ref.rel_err, updates['batch_stats'], new64))
  assert_as_close_as_mmseg(f'{config.name} BN running statistics (worst: {path})', err, own)
  one_pixel = 100.0 / np.sum(labels != IGNORE)
  for key in sorted(k for k in want if k.endswith('acc_seg')):
    flipped, own_flips = (abs(float(v) - float(want64[key])) / one_pixel
                          for v in (got[key], want[key]))
    print(f'{config.name} {key}: jseg {flipped:.2f}, MMSeg {own_flips:.2f} pixels from float64')
    assert flipped <= own_flips + max_flipped + 1e-3, (
        f'{key}: {float(got[key])} vs {float(want64[key])}')


def module_variables(module, torch_module, *args, reshape=False):
  """jseg variables of a bare MMSeg head or mmcv block from its state_dict (keys relative
  to it, MMSeg's key rules); ``reshape`` lets non-kernel values take the jseg shape."""
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), *args))
  sd = {k: v.numpy() for k, v in torch_module.state_dict().items()
        if not k.endswith('num_batches_tracked')}
  flat = {}
  for path, leaf in flax.traverse_util.flatten_dict(flax.core.unfreeze(shapes)).items():
    value = sd.pop(mmseg_key(path))
    if path[-1] == 'kernel':
      value = value.transpose(2, 3, 1, 0)
    elif reshape:
      value = value.reshape(leaf.shape)
    assert value.shape == leaf.shape, path
    flat[path] = jnp.asarray(value)
  assert not sd, f'unconverted: {sorted(sd)}'
  return flax.traverse_util.unflatten_dict(flat)


def displacement_errors(got, want, start, floor=1e-10):
  """{path: max|got - want| / max|want - start|} per leaf: the error of each leaf's move
  relative to MMSeg's move. Leaves that MMSeg moves by less than ``floor`` times the largest
  move (a zero gradient: NonLocal's phi bias, softmax-invariant, moves by 4e-28) are measured
  against that instead."""
  g, w, s = (flax.traverse_util.flatten_dict(flax.core.unfreeze(t)) for t in (got, want, start))
  moved = {p: float(np.abs(np.asarray(w[p]) - np.asarray(s[p])).max()) for p in w}
  least = floor * max(moved.values())
  return {'/'.join(p): float(np.abs(np.asarray(g[p]) - np.asarray(w[p])).max()) / max(moved[p], least)
          for p in w}


def assert_sgd_trajectory_equal(config, mm, iterations=3, size=(65, 81), tol=1e-8):
  """``iterations`` SGD steps (the whole poly schedule of a run that long) in float64 on both
  sides from MMSeg's ``init_weights()``, a new batch each step: jseg's jitted
  ``train.make_train_step`` against MMSeg's loss with torch SGD and mmengine's PolyLR. The loss of every step and the displacement of every
  parameter and BN statistic (final - initial) agree within ``tol``: below float32's rounding
  (6e-8), so that a float32 island anywhere in the step fails.

  Needs ``jax.enable_x64``; ``mm`` is re-initialized and made float64 in place. Not from
  ``randomize``'s weights: training is chaotic from those (MMSeg's own PSANet trajectory moves
  by 1.5e-5 after 5 steps when its weights are perturbed by 1e-12), from MMSeg's start it is not.
  """
  from mmengine.optim.scheduler import PolyLR
  from jseg import train
  assert jax.config.jax_enable_x64, 'run inside jax.enable_x64(True)'
  config = copy.deepcopy(config)
  config.unlock()
  config.train.update(iterations=iterations, schedule_end=None)
  tc = config.train
  torch.manual_seed(0)
  mm.init_weights()
  mm = mm.double().train()
  start = mmseg_to_jseg(mm.state_dict(), config, jnp.float64)
  opt = torch.optim.SGD(mm.parameters(), lr=tc.lr, momentum=tc.momentum,
                        weight_decay=tc.weight_decay)
  sched = PolyLR(opt, eta_min=tc.min_lr, power=tc.poly_power, begin=0, end=iterations,
                 by_epoch=False)
  model, tx = build_segmentor(config), train.make_optimizer(tc)
  state = train.TrainState(step=jnp.zeros((), jnp.int32), params=start['params'],
                           batch_stats=start['batch_stats'], opt_state=tx.init(start['params']))
  step = jax.jit(train.make_train_step(model, tx, config.model))
  rng = np.random.default_rng(2)
  loss_errs = []
  for _ in range(iterations):
    x = rng.standard_normal((2, *size, 3))
    labels = random_labels(rng, 2, *size, config.data.num_classes)
    opt.zero_grad()
    loss, _ = mm.parse_losses(mm.loss(ref.nchw(x), data_samples(labels)))
    loss.backward()
    opt.step()
    sched.step()
    state, scalars = step(state, jnp.asarray(x), jnp.asarray(labels), jax.random.key(0))
    loss_errs.append(ref.rel_err(scalars['loss'], loss.item()))
  want = mmseg_to_jseg(mm.state_dict(), config, jnp.float64)
  errs = {**displacement_errors(state.params, want['params'], start['params']),
          **displacement_errors(state.batch_stats, want['batch_stats'], start['batch_stats'])}
  worst = max(errs, key=errs.get)
  message = (f'{config.name}, {iterations} float64 SGD steps: worst loss rel err '
             f'{max(loss_errs):.2e}; worst leaf {worst} rel err {errs[worst]:.2e}')
  print(message)
  assert max(loss_errs) <= tol and errs[worst] <= tol, message
