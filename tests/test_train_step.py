"""The train step: one SGD step equals MMSeg + torch SGD; a step sharded over 8 devices equals
the single-device step on the same global batch (several processes: test_faults.py)."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import mmseg_ref as ref
from jseg import train
from jseg.convert import mmseg_to_jseg
from jseg.models import build_segmentor
import parity
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
  step = jax.jit(train.make_train_step(model, tx, config.model))
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
                         str(num_devices)], cwd=ROOT, env={**os.environ, **env},
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


@pytest.mark.parametrize('iterations,end', [(100, 100), (80, 40)])
def test_lr_schedule_equals_mmengine_poly_lr(iterations, end):
  from mmengine.optim.scheduler import PolyLR
  import ml_collections
  cfg = ml_collections.ConfigDict(dict(lr=0.02, min_lr=2e-4, poly_power=0.9,
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
