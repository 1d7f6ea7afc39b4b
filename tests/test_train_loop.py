"""The training loop on a tiny synthetic set: resuming is exact, evaluation and pictures
are written, bad overrides fail by name."""
import os
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

from jseg import checkpoints
from jseg import config as jconfig
from jseg import train
from jseg.data import prepare

ROOT = os.path.join(os.path.dirname(__file__), '..')
SPEC = 'configs/fcn.py:r18-d8_64x64_2k_synthetic'


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('data'))
  prepare.prepare('synthetic', data_dir=path, num_samples={'train': 12, 'val': 3}, size=40)
  return path


def _config(iterations=4):
  c = jconfig.load(SPEC).copy_and_resolve_references()
  c.data.crop_size = (32, 32)
  c.data.img_scale = c.data.test_img_scale = (40, 40)
  c.train.update(batch_size=2, iterations=iterations, eval_interval=2, checkpoint_interval=2,
                 log_interval=1)
  return c


def _params(workdir):
  return checkpoints.restore_variables(os.path.join(workdir, 'checkpoints', 'last', '4', 'default'))


def test_restart_continues_exactly(data_dir, tmp_path, monkeypatch, capsys):
  monkeypatch.setenv('JSEG_DATA', data_dir)
  straight = train.train_and_evaluate(_config(), str(tmp_path / 'a'))
  train.train_and_evaluate(_config(), str(tmp_path / 'b'), stop_at=2)
  out = capsys.readouterr().out
  assert 'resumed' not in out
  # The progress line: the share of the time spent waiting for batches beside the rate.
  assert re.search(r'^it 1/4 \| .* \| [\d.]+ img/s \| input wait \d+% \| eta ', out, re.M), out
  resumed = train.train_and_evaluate(_config(), str(tmp_path / 'b'))
  assert 'resumed from' in capsys.readouterr().out
  a, b = _params(tmp_path / 'a'), _params(tmp_path / 'b')
  assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(a))  # last step too
  jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)
  np.testing.assert_equal(straight, resumed)  # same evaluation of the same weights (NaN too)
  assert {'mIoU', 'mAcc', 'aAcc'} <= set(straight)
  for picture in ('predictions.png', 'curves.png'):
    assert os.path.getsize(tmp_path / 'a' / picture) > 0
  assert any(f.startswith('events') for f in os.listdir(tmp_path / 'a' / 'tensorboard'))


def test_unfinished_checkpoint_is_ignored_on_resume(data_dir, tmp_path, monkeypatch):
  monkeypatch.setenv('JSEG_DATA', data_dir)
  workdir = tmp_path / 'w'
  train.train_and_evaluate(_config(), str(workdir), stop_at=2)
  # What a run killed while saving step 4 leaves: orbax's temporary directory.
  partial = workdir / 'checkpoints' / 'last' / '4.orbax-checkpoint-tmp'
  (partial / 'default').mkdir(parents=True)
  (partial / 'default' / 'garbage').write_bytes(b'\0' * 10)
  train.train_and_evaluate(_config(), str(workdir))
  assert sorted(os.listdir(workdir / 'checkpoints' / 'last')) == ['2', '4']


# The keys the config gained after workdirs were first written (with the data set's test
# scale and set, the optimizer's and schedule's options and the pretrained file's prefix).
GAINED = ('data.test_dataset', 'data.test_img_scale', 'model.pretrained_prefix',
          'train.backbone_lr_mult', 'train.betas', 'train.clip_grad_norm', 'train.gamma',
          'train.lr_schedule', 'train.milestones', 'train.warmup_iters',
          'train.warmup_start_factor')


def test_workdir_of_a_config_without_the_gained_keys_resumes(tmp_path):
  """A workdir whose config.json predates GAINED resumes with them at their default values
  (data.test_dataset / test_img_scale: the training set's and img_scale), not with others."""
  import flax
  import json
  config = jconfig.load(SPEC)
  flat = flax.traverse_util.flatten_dict(json.loads(config.to_json_best_effort()), sep='.')
  assert set(GAINED) <= set(flat)
  old = {k: v for k, v in flat.items() if k not in GAINED}
  (tmp_path / 'config.json').write_text(json.dumps(flax.traverse_util.unflatten_dict(
      {tuple(k.split('.')): v for k, v in old.items()})))
  checkpoints.check_workdir_config(str(tmp_path), config, resumed=True)
  for key, value in (('test_dataset', 'ade20k'), ('test_img_scale', (32, 32))):
    changed = jconfig.load(SPEC)
    changed.data[key] = value
    with pytest.raises(ValueError, match=re.escape(f'data.{key}: ')):
      checkpoints.check_workdir_config(str(tmp_path), changed, resumed=True)


def test_config_override_typo_is_an_error_naming_the_key():
  proc = subprocess.run([sys.executable, '-m', 'jseg.main', f'--config={SPEC}',
                         '--workdir=/tmp/unused', '--config.train.iteratons=5'],
                        cwd=ROOT, capture_output=True, text=True)
  assert proc.returncode != 0
  assert 'iteratons' in proc.stderr


@pytest.mark.parametrize('variant,mode,missing', [
    ('r50-d8_512x1024_80k_cityscapes', 'train', 'cityscapes'),
    ('r50-d8_512x1024_40k_dark', 'eval', 'dark_zurich')])  # evaluates on its data.test_dataset
def test_missing_data_set_names_the_prepare_command(tmp_path, variant, mode, missing):
  proc = subprocess.run([sys.executable, '-m', 'jseg.main', f'--config=configs/pspnet.py:{variant}',
                         f'--mode={mode}', '--workdir=/tmp/unused'], cwd=ROOT, capture_output=True,
                        text=True, env={**os.environ, 'JSEG_DATA': str(tmp_path)})
  assert proc.returncode != 0
  assert f'python -m jseg.data.prepare {missing} --source=' in proc.stderr
