"""float16 training with loss scaling (jseg.loss_scale): torch's GradScaler rules, overflows
skipped and the scale halved, no non-finite value in any saved state. (MMSeg's fp16 rows:
test_configs.py checks their precision and static scale against MMSeg's AmpOptimWrapper.)"""
import os
import re

import jax
import numpy as np
import pytest
import torch

from jseg import checkpoints, loss_scale, train
from jseg import config as jconfig
from jseg.data import prepare


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
