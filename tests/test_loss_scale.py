"""float16 training with loss scaling (jseg.loss_scale): torch's GradScaler rules, overflows
skipped and the scale halved, no non-finite value in any saved state. (MMSeg's fp16 rows:
test_configs.py checks their precision and static scale against MMSeg's AmpOptimWrapper.)"""
import os
import re

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import fast_compile
import mmseg_ref as ref
import parity
from jseg import checkpoints, loss_scale, train
from jseg import config as jconfig
from jseg.convert import mmseg_to_jseg
from jseg.data import prepare
from jseg.models import build_segmentor


def test_dynamic_scale_follows_torch_grad_scaler():
  """The scale after each step of a sequence of finite / overflowing steps equals torch's
  ``_amp_update_scale_`` (what GradScaler.update and so MMSeg's AmpOptimWrapper run)."""
  rng = np.random.default_rng(0)
  overflows = rng.random(60) < 0.15
  ours = loss_scale.LossScale.create(1024.0, growth_interval=4)
  update = jax.jit(lambda s, finite: s.update(finite))
  scale, tracker = torch.tensor([1024.0]), torch.zeros(1, dtype=torch.int32)
  for overflow in overflows:
    ours = update(ours, not overflow)
    torch._amp_update_scale_(scale, tracker, torch.tensor([float(overflow)]), 2.0, 0.5, 4)
    assert (float(ours.scale), int(ours.good_steps)) == (scale.item(), tracker.item())
  assert float(ours.scale) != 1024.0  # the sequence both grew and halved it


def test_static_scale_never_changes():
  static = loss_scale.LossScale.create(512.0, dynamic=False)
  assert float(static.update(False).scale) == float(static.update(True).scale) == 512.0


@pytest.mark.parametrize('value,want', [(None, None), ('dynamic', (65536.0, True)),
                                        (512.0, (512.0, False)), (512, (512.0, False))])
def test_loss_scale_from_config(value, want):
  config = jconfig.load('configs/fcn.py:r18w16-d8_64x64_2k_synthetic')
  config.train.loss_scale = value
  got = loss_scale.from_config(config)
  assert (got if got is None else (float(got.scale), got.dynamic)) == want
  config.precision = 'float16'
  if value is None:  # float16's default
    assert loss_scale.from_config(config).dynamic


def test_invalid_loss_scale_names_the_valid_ones():
  config = jconfig.load('configs/fcn.py:r18w16-d8_64x64_2k_synthetic')
  config.train.loss_scale = 'static'
  with pytest.raises(ValueError, match=r"train.loss_scale='static'; valid: 'dynamic', a "
                                       r'positive number'):
    loss_scale.from_config(config)


def test_float16_run_skips_overflows_halves_the_scale_and_saves_finite_states(
    tmp_path, monkeypatch, capsys):
  """A float16 run of the quick start's FCN with dynamic scaling from 2**18, where its backward
  overflows float16 (measured; 2**17 overflows on some batches, 2**16 trains): iteration 1 is
  skipped (the state after it is the initial one, bit for bit), each overflow halves the scale
  that the next steps use and the log says so, the run trains, every saved state is finite."""
  data_dir = str(tmp_path / 'data')
  prepare.prepare('synthetic', data_dir=data_dir, num_samples={'train': 12, 'val': 3}, size=40)
  monkeypatch.setenv('JSEG_DATA', data_dir)
  monkeypatch.setattr(loss_scale, 'INIT_SCALE', 2.0**18)
  config = jconfig.load('configs/fcn.py:r18w16-d8_64x64_2k_synthetic')
  config.data.crop_size, config.data.img_scale = (32, 32), (40, 40)
  config.precision = 'float16'
  config.train.update(batch_size=2, iterations=5, eval_interval=5, checkpoint_interval=1,
                      log_interval=1, keep_checkpoints=5)
  workdir = str(tmp_path / 'w')
  train.train_and_evaluate(config, workdir)
  lines = re.findall(r'^it (\d)/5 .*\| loss scale (\d+)(?: \| (\d) overflows skipped '
                     r'\(last: it (\d)\))?$', capsys.readouterr().out, re.M)
  assert [int(it) for it, *_ in lines] == [1, 2, 3, 4, 5], lines
  overflows = 0
  for it, scale, count, last in lines:
    assert int(scale) == 2**18 // 2**overflows, lines  # halved once per earlier overflow
    overflows = int(count or 0)
  assert lines[0][2:] == ('1', '1') and overflows < 5, lines  # 2**18 overflows; then it trains

  def saved(step):
    return checkpoints.restore_variables(os.path.join(workdir, 'checkpoints', 'last', str(step),
                                                      'default'))

  initial = jax.device_get(train.init_variables(config, jax.random.key(config.seed)))
  jax.tree_util.tree_map(np.testing.assert_array_equal, initial, saved(1))
  assert any(np.any(a != b) for a, b in zip(jax.tree_util.tree_leaves(saved(1)),
                                            jax.tree_util.tree_leaves(saved(5))))
  for step in range(1, 6):
    assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(saved(step))), step


def _update_error(variables, want, start):
  """||update - want's update|| / ||want's update|| over all parameters (float64)."""
  g, w, s = (flax.traverse_util.flatten_dict(flax.core.unfreeze(t['params']))
             for t in (variables, want, start))
  num = den = 0.0
  for p in w:
    moved = np.asarray(w[p], np.float64) - np.asarray(s[p], np.float64)
    num += np.sum((np.asarray(g[p], np.float64) - np.asarray(s[p], np.float64) - moved) ** 2)
    den += np.sum(moved ** 2)
  return float(np.sqrt(num / den))


def test_float16_step_is_as_close_to_float64_as_mmseg_amp():
  """One SGD step of FCN R-18 in float16 with MMSeg's static scale 512, against MMSeg's fp16
  step: AmpOptimWrapper asserts a GPU, so its calls are made here with torch's CPU autocast
  (``scaler.scale(loss).backward(); scaler.step(opt); scaler.update(512.)``). float16 rounding
  is not the same in the two (torch keeps other ops in float32), so the yardstick is the float64
  step: jseg's update and loss are as far from it as MMSeg's AMP ones. Measured: parameter
  update 0.177 (MMSeg AMP 0.175; float32: 3e-5), loss 1.5e-5 (5.9e-6)."""
  config, mm = parity.pair(*parity.FCN_R18, seed=5, dropout=False)
  mm.train()
  mm64 = parity.float64(mm)
  start = mmseg_to_jseg(mm.state_dict(), config)
  rng = np.random.default_rng(7)
  x = rng.standard_normal((2, 65, 81, 3)).astype(np.float32)
  labels = parity.random_labels(rng, 2, 65, 81, 19)
  tc = config.train
  want = {}
  for name, model, images in (('amp', mm, ref.nchw(x)), ('64', mm64, ref.nchw(x).double())):
    opt = torch.optim.SGD(model.parameters(), lr=tc.lr, momentum=tc.momentum,
                          weight_decay=tc.weight_decay)
    scaler = torch.amp.GradScaler('cpu', init_scale=512.0, enabled=name == 'amp')
    with torch.autocast('cpu', dtype=torch.float16, enabled=name == 'amp'):
      loss, _ = model.parse_losses(model.loss(images, parity.data_samples(labels)))
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update(512.0)
    want[name] = dict(mmseg_to_jseg(model.state_dict(), config, jnp.float64), loss=loss.item())
  config.precision, config.train.loss_scale = 'float16', 512.0
  tx = train.make_optimizer(tc)
  step = fast_compile.jit(train.make_train_step(build_segmentor(config), tx, config.model))
  state, scalars = step(train.init_state(tx, start, loss_scale.from_config(config)),
                        jnp.asarray(x), jnp.asarray(labels), jax.random.key(0))
  ours, amp = _update_error(state.variables, want['64'], start), _update_error(
      want['amp'], want['64'], start)
  loss_err, amp_loss_err = (ref.rel_err(v, want['64']['loss'])
                            for v in (scalars['loss'], want['amp']['loss']))
  print(f'update from float64: jseg float16 {ours:.3g}, MMSeg AMP {amp:.3g}; loss: jseg '
        f'{loss_err:.2e}, MMSeg AMP {amp_loss_err:.2e}')
  assert int(scalars['skipped']) == 0 and float(scalars['loss_scale']) == 512.0
  assert 0.02 < amp and ours <= 1.5 * amp  # float16 noise, not float32's; and no more of it
  assert loss_err <= max(10 * amp_loss_err, 1e-4)
