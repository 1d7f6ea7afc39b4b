"""The train step: one SGD step equals MMSeg + torch SGD; a step sharded over 8 devices equals
the single-device step on the same global batch (several processes: test_faults.py)."""
import os
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import fast_compile
import mmseg_ref as ref
from jseg import config as jconfig
from jseg import mesh as jmesh
from jseg import train
from jseg.convert import mmseg_to_jseg
from jseg.models import build_segmentor
import parity
import spatial_step
from parity import FCN_R18, data_samples, random_labels, pair

HERE = os.path.dirname(__file__)
ROOT = os.path.join(HERE, '..')


def test_one_sgd_step_equals_mmseg_with_torch_sgd():
  """One float32 step: the loss, every parameter's update and every BN statistic's change are
  as close to MMSeg's float64 step as MMSeg's own float32 step is (whole trajectories in
  float64: test_trajectory.py)."""
  config, mm32 = pair(*FCN_R18, seed=5, dropout=False)
  mm32.train()
  mm64 = parity.float64(mm32)
  before = mmseg_to_jseg(mm32.state_dict(), config)
  rng = np.random.default_rng(7)
  x = rng.standard_normal((2, 65, 81, 3)).astype(np.float32)
  labels = random_labels(rng, 2, 65, 81, 19)
  tc = config.train
  want = {}
  for name, mm, images in (('32', mm32, ref.nchw(x)), ('64', mm64, ref.nchw(x).double())):
    opt = torch.optim.SGD(mm.parameters(), lr=tc.lr, momentum=tc.momentum,
                          weight_decay=tc.weight_decay)
    loss, _ = mm.parse_losses(mm.loss(images, data_samples(labels)))
    loss.backward()
    opt.step()
    want[name] = dict(mmseg_to_jseg(mm.state_dict(), config, jnp.float64), loss=loss.item())

  model = build_segmentor(config)
  tx = train.make_optimizer(tc)
  state = train.TrainState(step=jnp.zeros((), jnp.int32), params=before['params'],
                           batch_stats=before['batch_stats'],
                           opt_state=tx.init(before['params']))
  step = fast_compile.jit(train.make_train_step(model, tx, config.model))
  state, scalars = step(state, jnp.asarray(x), jnp.asarray(labels), jax.random.key(0))
  # The updates (new - old), not the parameters: "both barely moved" must not pass. The
  # yardstick is MMSeg's worst float32 deviation, as in parity.assert_train_losses_equal.
  def update_errors(variables):
    return {k: e for c in ('params', 'batch_stats') for k, e in
            parity.displacement_errors(variables[c], want['64'][c], before[c]).items()}

  errs = update_errors(state.variables)
  own = max(max(update_errors(want['32']).values()),
            ref.rel_err(want['32']['loss'], want['64']['loss']))
  parity.assert_as_close_as_mmseg('loss', ref.rel_err(scalars['loss'], want['64']['loss']), own)
  path = max(errs, key=errs.get)
  parity.assert_as_close_as_mmseg(f'update of {path}', errs[path], own)


def _run(out, num_devices, env):
  proc = subprocess.run([sys.executable, os.path.join(HERE, 'sharded_step.py'), str(out),
                         str(num_devices)], cwd=ROOT, env=fast_compile.env(**env),
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout + proc.stderr


def _assert_same(a_path, b_path, tol=1e-5):
  a, b = np.load(a_path), np.load(b_path)
  assert set(a) == set(b)
  for k in a:  # relative error, denominator at least 1 (the scale parameters start at 1)
    err = np.abs(a[k] - b[k]).max() / max(np.abs(b[k]).max(), 1.0)
    assert err <= tol, f'{k}: {err:.2e}'


def test_sharded_step_on_8_devices_equals_one_device(tmp_path):
  devices8 = {'XLA_FLAGS': '--xla_force_host_platform_device_count=8'}
  _run(tmp_path / 'one.npz', 1, env=devices8)
  _run(tmp_path / 'eight.npz', 8, env=devices8)
  _assert_same(tmp_path / 'eight.npz', tmp_path / 'one.npz')


@pytest.mark.parametrize('method', ['pspnet', 'ccnet'])
def test_spatial_meshes_equal_the_data_parallel_step_in_float64(method, tmp_path):
  """One float64 train step and eval forward on 8 devices as 8 x 1 (data parallel), 2 x 4 and
  1 x 8 ('data' x 'spatial': each image's rows split over 4 or 8 devices), and a prediction at
  a size that divides into nothing: the same sums in another order. Errors are relative to the
  step's largest update of the collection (parameters, BatchNorm statistics): an update that
  cancels to nearly 0 (CCNet's key bias: softmax ignores it) has no digits to compare. Measured
  for every method (benchmarks/spatial_agreement.py): 3.6e-14 to 5.7e-13; PSPNet pools each
  whole map, CCNet attends along its rows and columns."""
  out = tmp_path / 'meshes.npz'
  proc = subprocess.run([sys.executable, os.path.join(HERE, 'spatial_step.py'), str(out), method,
                         'float64'], cwd=ROOT, capture_output=True, text=True, timeout=900,
                        env=fast_compile.env(XLA_FLAGS='--xla_force_host_platform_device_count=8'))
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert ("input: 61 rows on mesh.spatial=4 at the network's output stride 8 are not a multiple "
          'of 32: the rows do not split evenly at every stride. Even: 32 or 64; the logits are '
          'exact, but XLA may compute whole maps on each device') in proc.stderr
  got = np.load(out)
  names = [k[len('8x1:'):] for k in got if k.startswith('8x1:')]
  assert len(names) > 20 and {'loss', 'logits', 'odd_size_logits'} <= set(names)
  assert min(spatial_step.scales(got).values()) > 0
  for mesh in ('2x4', '1x8'):
    errors = spatial_step.relative_errors(got, mesh, got)
    assert max(errors.values()) <= 1e-11, (mesh, errors)


def test_mesh_sizes_that_do_not_divide_are_named():
  """Rows split evenly over ``spatial`` devices at every stride of the network only where the
  height divides by spatial x the output stride (8: D8 ResNets; 32: the others, HRNet):
  required of training crops, warned of inference inputs (test_spatial_meshes_...)."""
  strides = {spec: build_segmentor(jconfig.load(f'configs/{spec}')).backbone.output_stride
             for spec in ('fcn.py:r50-d8_512x1024_80k_cityscapes', 'upernet.py:r50_512x512_80k_ade20k',
                          'hrnet.py:hr18s_512x1024_80k_cityscapes',
                          'deeplabv3plus.py:r101-d16-mg124_512x1024_80k_cityscapes')}
  assert list(strides.values()) == [8, 32, 32, 16]
  assert jmesh.uneven_rows(1024, 8, 8) is None and jmesh.uneven_rows(512, 4, 32) is None
  assert jmesh.uneven_rows(10, 2, 8).endswith('Even: 16')
  with pytest.raises(ValueError, match='mesh.spatial=3 does not divide the 2 devices'):
    jmesh.make_mesh([jax.devices()[0]] * 2, spatial=3)
  config = jconfig.load('configs/fcn.py:r18-d8_512x1024_80k_cityscapes')
  mesh_2x4 = types.SimpleNamespace(shape={'data': 2, 'spatial': 4}, size=8)
  config.data.crop_size = (520, 1024)
  with pytest.raises(ValueError, match=r"crop_size=\(520, 1024\): 520 rows on mesh.spatial=4 at "
                                       r"the network's output stride 8 are not a multiple of 32: "
                                       'the rows do not split evenly at every stride. Even: 512 '
                                       'or 544'):
    jmesh.check_mesh(config, mesh_2x4, 8)
  config.data.crop_size, config.train.batch_size = (512, 1024), 3
  with pytest.raises(ValueError, match=r'batch_size=3 is not divisible by the 2 data-parallel '
                                       r'groups of the mesh \(8 devices / mesh.spatial=4\)'):
    jmesh.check_mesh(config, mesh_2x4, 8)


@pytest.mark.parametrize('iterations,end', [(100, 100), (80, 40)])
def test_lr_schedule_equals_mmengine_poly_lr(iterations, end):
  from mmengine.optim.scheduler import PolyLR
  import ml_collections
  cfg = ml_collections.ConfigDict(dict(lr=0.02, min_lr=2e-4, poly_power=0.9, lr_schedule='poly',
                                       warmup_iters=0, warmup_start_factor=1e-3,
                                       iterations=iterations, schedule_end=end))
  opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
  sched = PolyLR(opt, eta_min=cfg.min_lr, power=cfg.poly_power, begin=0, end=end, by_epoch=False)
  want = []
  for _ in range(iterations):
    want.append(opt.param_groups[0]['lr'])
    opt.step()
    sched.step()
  got = [float(train.lr_schedule(cfg)(i)) for i in range(iterations)]
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)
  jitted = jax.jit(train.lr_schedule(cfg))  # XLA:CPU's jitted 0 ** 0.9 is NaN
  np.testing.assert_allclose([float(jitted(i)) for i in range(iterations + 3)],
                             want + [want[-1]] * 3, rtol=1e-5, atol=1e-9)


# MMSeg configs whose optimizer is not the SGD + PolyLR recipe: PSPNet's rsb rows (AdamW, clipped
# to norm 1, LinearLR warmup then MultiStepLR) and DeepLabV3+ on Mapillary (AdamW, clipped to
# norm 0.01, the backbone at 0.1 x lr, PolyLR to 0).
OPTIMIZER_CASES = [('pspnet', 'r50-d8_rsb-pretrain_512x1024_adamw_80k_cityscapes'),
                   ('deeplabv3plus', 'r50-d8_1280x1280_300k_mapillary_v1_65')]


def _mmengine_optimizer(mm_cfg, params):
  """mmengine's OptimWrapper and ParamSchedulers built from MMSeg's config ``mm_cfg``, as its
  Runner builds them, for a torch module with the torch ``params`` {'backbone': {...},
  'decode_head': {...}}; and the module's name of each parameter group's (one) parameter."""
  from mmengine.optim import build_optim_wrapper
  from mmengine.registry import PARAM_SCHEDULERS
  net = torch.nn.Module()
  for module, tensors in params.items():
    sub = torch.nn.Module()
    for name, value in tensors.items():
      sub.register_parameter(name, torch.nn.Parameter(value))
    net.add_module(module, sub)
  wrapper = build_optim_wrapper(net, mm_cfg.optim_wrapper)
  schedulers = [PARAM_SCHEDULERS.build(dict(s, optimizer=wrapper)) for s in mm_cfg.param_scheduler]
  names = {id(p): n for n, p in net.named_parameters()}
  return net, wrapper, schedulers, names


@pytest.mark.parametrize('method,variant', OPTIMIZER_CASES, ids=[v for _, v in OPTIMIZER_CASES])
def test_lr_schedule_equals_mmengines_schedulers_of_the_mmseg_config(method, variant):
  """Every iteration's learning rate of every parameter group (the backbone's at its lr_mult),
  against mmengine's ParamSchedulers built from MMSeg's config and stepped once per iteration
  as its ParamSchedulerHook does: to ~1e-13 in float64, within a few float32 ulps in float32."""
  mm = ref.mmseg_config(method, variant)
  c = jconfig.load(f'configs/{method}.py:{variant}')
  params = {'backbone': {'weight': torch.zeros(1)}, 'decode_head': {'weight': torch.zeros(1)}}
  _, wrapper, schedulers, names = _mmengine_optimizer(mm, params)
  groups = wrapper.optimizer.param_groups
  iterations = mm.train_cfg.max_iters
  assert c.train.iterations == iterations
  want = np.zeros((len(groups), iterations))
  for it in range(iterations):  # the lr only: no optimizer steps (mmengine warns, harmlessly)
    want[:, it] = [g['lr'] for g in groups]
    for s in schedulers:
      s.step()
  steps = np.arange(iterations)
  for group, lrs in zip(groups, want):
    backbone = names[id(group['params'][0])].startswith('backbone.')
    mult = c.train.backbone_lr_mult if backbone else 1.0
    with jax.enable_x64(True):
      np.testing.assert_allclose(train.lr_schedule(c.train, mult)(steps), lrs, rtol=1e-12)
    got = jax.jit(train.lr_schedule(c.train, mult))(steps)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, lrs, rtol=5e-7, atol=0)
  if len(groups) > 1:  # the multiplier's group is there
    assert {names[id(g['params'][0])] for g in groups} == {'backbone.weight', 'decode_head.weight'}
    assert sorted(g['lr'] for g in groups) == [0.0, 0.0]  # PolyLR to eta_min 0
  if method == 'pspnet':  # the warmup reaches lr at its last iteration (999), x0.1 at 61000
    lrs = want[0] / c.train.lr
    np.testing.assert_allclose(lrs[[0, 1, 998, 999, 1000, 60999, 61000, 73000]],
                               [1e-3, 2e-3, 0.999, 1, 1, 1, 0.1, 0.01], rtol=1e-12)


@pytest.mark.parametrize('method,variant', OPTIMIZER_CASES, ids=[v for _, v in OPTIMIZER_CASES])
def test_adamw_clip_and_lr_mult_update_equals_mmengines_optim_wrapper(method, variant):
  """Three updates of a few parameters, in float64: mmengine's OptimWrapper of MMSeg's config
  (torch AdamW, clip_grad_norm_, the backbone's lr_mult) and its schedulers, against
  ``make_optimizer``. The gradients' norms are 3x, 30x and 0.5x the clipping norm."""
  mm = ref.mmseg_config(method, variant)
  c = jconfig.load(f'configs/{method}.py:{variant}')
  rng = np.random.default_rng(0)
  shapes = {'backbone': {'weight': (4, 3), 'bias': (4,)}, 'decode_head': {'weight': (2, 4)}}
  start = jax.tree_util.tree_map(lambda s: rng.standard_normal(s), shapes,
                                 is_leaf=lambda x: isinstance(x, tuple))
  net, wrapper, schedulers, _ = _mmengine_optimizer(
      mm, jax.tree_util.tree_map(torch.tensor, start))  # copies
  max_norm = mm.optim_wrapper.clip_grad.max_norm
  assert c.train.clip_grad_norm == max_norm
  grads = []
  for norm in (3, 30, 0.5):
    g = jax.tree_util.tree_map(lambda x: rng.standard_normal(x.shape), start)
    g_norm = np.sqrt(sum((x ** 2).sum() for x in jax.tree_util.tree_leaves(g)))
    grads.append(jax.tree_util.tree_map(lambda x: x * norm * max_norm / g_norm, g))
  for g in grads:
    for name, p in net.named_parameters():
      module, leaf = name.split('.')
      p.grad = torch.tensor(g[module][leaf])  # a copy: clipping scales it in place
    wrapper.step()  # clip_grad_norm_, then AdamW
    for s in schedulers:
      s.step()
  want = {n: p.detach().numpy() for n, p in net.named_parameters()}
  with jax.enable_x64(True):
    tx = train.make_optimizer(c.train)
    params = jax.tree_util.tree_map(jnp.asarray, start)
    state = tx.init(params)
    for g in grads:
      updates, state = tx.update(jax.tree_util.tree_map(jnp.asarray, g), state, params)
      params = optax.apply_updates(params, updates)
    for name, value in want.items():
      module, leaf = name.split('.')
      moved, want_moved = params[module][leaf] - start[module][leaf], value - start[module][leaf]
      assert np.abs(want_moved).max() > 0, name
      # atol: a few float64 ulps of the parameters (O(1)), of which the displacement is a
      # difference
      np.testing.assert_allclose(moved, want_moved, rtol=1e-9, atol=1e-14, err_msg=name)
