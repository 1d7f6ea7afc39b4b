"""Faults a long run meets: SIGKILL anywhere (also mid-checkpoint and mid-evaluation) and
SIGTERM, a non-finite loss, a changed config on resume, a full disk. Whatever happens, the
next start continues the run to the same final weights, bit for bit."""
import glob
import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fast_compile
from jseg import checkpoints, train
from jseg import config as jconfig
from jseg.data import loader, prepare

ROOT = os.path.join(os.path.dirname(__file__), '..')
SPEC = 'configs/fcn.py:r18w16-d8_64x64_2k_synthetic'  # the quick start's quarter-width FCN
SHORT = dict(batch_size=2, iterations=8, eval_interval=4, checkpoint_interval=2, log_interval=1)


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('data'))
  prepare.prepare('synthetic', data_dir=path, num_samples={'train': 12, 'val': 3}, size=40)
  return path


def _config(**train_cfg):
  c = jconfig.load(SPEC)
  c.data.crop_size = (32, 32)
  c.data.img_scale = (40, 40)
  c.train.update({**SHORT, **train_cfg})
  return c


def _final(workdir, step=8):
  return checkpoints.restore_variables(os.path.join(workdir, 'checkpoints', 'last', str(step),
                                                    'default'))


def _history(workdir):
  with open(os.path.join(workdir, 'history.json')) as f:
    return json.load(f)


# ---- kill -9 and SIGTERM ------------------------------------------------------------------------

def _partial_saves(workdir):
  return glob.glob(os.path.join(workdir, 'checkpoints', '*', '*.orbax-checkpoint-tmp*'))


def _run(workdir, env, trigger=None, sig=signal.SIGKILL):
  """``python -m jseg.main`` on the short schedule; ``sig`` as soon as ``trigger(output)``.
  Returns (exit code, output, seconds from the signal to the exit)."""
  cmd = [sys.executable, '-m', 'jseg.main', f'--config={SPEC}', f'--workdir={workdir}',
         '--config.data.crop_size=(32, 32)', '--config.data.img_scale=(40, 40)'] + [
             f'--config.train.{k}={v}' for k, v in SHORT.items()]
  proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  os.set_blocking(proc.stdout.fileno(), False)
  output, signalled = '', None
  while trigger and proc.poll() is None:
    output += (proc.stdout.read() or b'').decode(errors='replace')
    if trigger(output):
      proc.send_signal(sig)
      signalled = time.time()
      break
    time.sleep(0.002)
  os.set_blocking(proc.stdout.fileno(), True)
  output += proc.communicate(timeout=600)[0].decode(errors='replace')
  assert signalled or not trigger, f'the run ended before its trigger:\n{output[-3000:]}'
  return proc.returncode, output, signalled and time.time() - signalled


def test_killed_and_stopped_runs_end_bit_identical(data_dir, tmp_path):
  """SIGKILL at a random iteration, during a checkpoint write and during an evaluation, then
  SIGTERM: each time the same command resumes, and the run ends where an uninterrupted one does
  (parameters, BN statistics, the loss curve)."""
  env = fast_compile.env(JSEG_DATA=data_dir, PYTHONPATH=os.path.abspath(ROOT))
  straight, workdir = str(tmp_path / 'straight'), str(tmp_path / 'killed')
  code, output, _ = _run(straight, env)
  assert code == 0, output[-3000:]
  seed = random.randrange(1000)
  print(f'kill points drawn with random.Random({seed})')
  rng = random.Random(seed)
  at = rng.randint(1, 3)
  code, output, _ = _run(workdir, env, lambda out: f'it {at}/8' in out)
  assert code == -signal.SIGKILL, output[-3000:]
  def writing(out):  # this run trained (so it removed any partial write of the first kill)
    return re.search(r'^it \d/8', out, re.M) and _partial_saves(workdir)  # and is writing

  code, output, _ = _run(workdir, env, writing)
  assert code == -signal.SIGKILL and _partial_saves(workdir), output[-3000:]
  code, output, _ = _run(workdir, env, lambda out: re.search(r'it \d/8[^\n]*\n.*eval val', out, re.S))
  assert code == -signal.SIGKILL and 'evaluation at iteration' not in output.split('eval val')[-1]
  code, output, seconds = _run(workdir, env, lambda out: re.search(r'^it \d/8', out, re.M),
                               signal.SIGTERM)
  stopped = re.search(r'stopped by SIGTERM after iteration (\d)', output)
  assert code == 0 and stopped, output[-3000:]
  assert os.path.isdir(os.path.join(workdir, 'checkpoints', 'last', stopped.group(1), 'default'))
  assert seconds < 60, seconds
  code, output, _ = _run(workdir, env)
  assert code == 0 and f'resumed from {workdir} at iteration {stopped.group(1)}' in output, output
  assert not _partial_saves(workdir)
  jax.tree_util.tree_map(np.testing.assert_array_equal, _final(straight), _final(workdir))
  assert _history(workdir) == _history(straight)  # the curves continue across the restarts
  assert [it for it, _ in _history(workdir)['train']] == list(range(1, 9))


# ---- non-finite losses --------------------------------------------------------------------------

def _white_is_nan(monkeypatch):
  """The train step normalizes a batch of all-255 images to NaN (no real batch is all white)."""
  normalize = train.normalize_images
  monkeypatch.setattr(train, 'normalize_images', lambda images, sizes, data_cfg: jnp.where(
      jnp.all(images == 255), jnp.nan, normalize(images, sizes, data_cfg)))


def _nan_at(iteration, monkeypatch):
  """Training batches whose images are NaN at ``iteration`` (1-based)."""
  original = loader.train_batches

  def batches(config, start_step=0, **kwargs):
    for step, (images, labels, sizes) in enumerate(original(config, start_step, **kwargs),
                                                   start_step):
      yield (np.full_like(images, 255) if step + 1 == iteration else images), labels, sizes
  monkeypatch.setattr(loader, 'train_batches', batches)
  _white_is_nan(monkeypatch)


def test_nan_policy_stop_names_the_step_and_keeps_finite_checkpoints(data_dir, tmp_path,
                                                                     monkeypatch):
  monkeypatch.setenv('JSEG_DATA', data_dir)
  _nan_at(3, monkeypatch)
  with pytest.raises(FloatingPointError, match=r'iteration 3: non-finite loss \(aux.loss_ce=nan, '
                                               r'decode.loss_ce=nan, loss=nan\)'):
    train.train_and_evaluate(_config(), str(tmp_path / 'w'))
  assert sorted(os.listdir(tmp_path / 'w' / 'checkpoints' / 'last')) == ['2']


def test_nan_policy_skip_drops_the_update_and_stops_after_too_many(data_dir, tmp_path,
                                                                   monkeypatch, capsys):
  """A skipped step leaves the state as it was: skipping iteration 3 of a run equals a run that
  never saw batch 3 (its step counter aside); the count is logged; 2 in a row of at most 1 stop."""
  monkeypatch.setenv('JSEG_DATA', data_dir)
  train.train_and_evaluate(_config(iterations=3, eval_interval=2), str(tmp_path / 'a'), stop_at=2)
  _nan_at(3, monkeypatch)
  train.train_and_evaluate(_config(nan_policy='skip', iterations=3, eval_interval=2),
                           str(tmp_path / 'b'))
  assert 'skipped 1 non-finite (last: it 3)' in capsys.readouterr().out
  jax.tree_util.tree_map(np.testing.assert_array_equal, _final(tmp_path / 'a', 2),
                         _final(tmp_path / 'b', 3))
  monkeypatch.setattr(train, 'global_batch', lambda mesh, images, labels, sizes: (
      np.full_like(images, 255), labels, sizes))
  with pytest.raises(FloatingPointError, match=r'iteration 2: 2 updates in a row skipped .*'
                                               r'max_consecutive_skips=1'):
    train.train_and_evaluate(_config(nan_policy='skip', max_consecutive_skips=1),
                             str(tmp_path / 'c'))


# ---- a workdir of another config; a full disk ---------------------------------------------------

def test_resume_with_another_model_or_crop_lists_the_keys(data_dir, tmp_path, monkeypatch):
  monkeypatch.setenv('JSEG_DATA', data_dir)
  train.train_and_evaluate(_config(), str(tmp_path), stop_at=2)
  other = _config(iterations=12)  # a schedule override may change
  other.data.crop_size = (24, 24)
  other.model.decode_head.channels = 64
  with pytest.raises(ValueError, match=r'(?s)holds a run of another config.*\n'
                                       r'  data.crop_size: \[32, 32\] -> \[24, 24\]\n'
                                       r'  model.decode_head.channels: 32 -> 64$'):
    train.train_and_evaluate(other, str(tmp_path))
  train.train_and_evaluate(_config(iterations=4), str(tmp_path))  # the schedule may change


def test_full_disk_is_a_clear_error_and_loses_no_checkpoint(data_dir, tmp_path, monkeypatch):
  """Files capped at 256 KB (RLIMIT_FSIZE: the state's checkpoint no longer fits) after iteration 2
  is saved: the save of 4 fails naming the complete checkpoints; with room, the run resumes."""
  monkeypatch.setenv('JSEG_DATA', data_dir)
  train.train_and_evaluate(_config(), str(tmp_path), stop_at=2)
  limits = resource.getrlimit(resource.RLIMIT_FSIZE)
  previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails instead of a signal
  resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 18, limits[1]))
  try:
    with pytest.raises(OSError, match=r'(?s)no space left for .*File too large.*The checkpoints '
                                      r'of iterations \[2\] in .* are complete'):
      train.train_and_evaluate(_config(), str(tmp_path))
  finally:
    resource.setrlimit(resource.RLIMIT_FSIZE, limits)
    signal.signal(signal.SIGXFSZ, previous)
  train.train_and_evaluate(_config(), str(tmp_path))
  assert sorted(os.listdir(tmp_path / 'checkpoints' / 'last')) == ['4', '6', '8']


# ---- several processes, as on a cluster (launch/local.py) ---------------------------------------

def _launch_command(processes, devices, *args):
  """``launch/local.py`` on a 16-iteration schedule at batch 4 (evaluations at 8 and 16)."""
  return [sys.executable, os.path.join(ROOT, 'launch', 'local.py'), f'--processes={processes}',
          f'--devices={devices}', '--', f'--config={SPEC}', '--config.data.crop_size=(32, 32)',
          '--config.data.img_scale=(40, 40)'] + [f'--config.train.{k}={v}' for k, v in dict(
              SHORT, batch_size=4, iterations=16, eval_interval=8).items()] + list(args)


def _launch(env, processes, devices, *args):
  """Runs :func:`_launch_command` to its end; returns process 0's output."""
  done = subprocess.run(_launch_command(processes, devices, *args), cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=900)
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
  return done.stdout


def _evaluations(output):
  """The evaluation tables a training run printed."""
  return re.findall(r'evaluation at iteration \d+:\n.*?aAcc[^\n]*', output, re.S)


def test_two_processes_of_two_devices_train_and_evaluate_as_one_of_four(data_dir, tmp_path):
  """2 processes x 2 CPU devices (gloo), preempted (SIGTERM to the launcher, passed on to both:
  JAX's preemption service picks one step for both) and resumed, end bit-identical to an
  uninterrupted run of 1 process x 4, and their evaluations (2 processes: each its share of the
  images, confusion matrices summed) print the same tables. Both on the mesh 2 x 2 ('data' x
  'spatial', mesh.spatial=2): each process's images, their rows split over its 2 devices (the
  data-parallel mesh is mesh.spatial=1 of the same code; 2 processes x 4 devices with
  mesh.spatial=4, run by hand, ended bit-identical too)."""
  env = fast_compile.env(JSEG_DATA=data_dir, PYTHONPATH=os.path.abspath(ROOT))
  one, two, spatial = str(tmp_path / '1x4'), str(tmp_path / '2x2'), '--config.mesh.spatial=2'
  single = _launch(env, 1, 4, f'--workdir={one}', spatial)
  proc = subprocess.Popen(_launch_command(2, 2, f'--workdir={two}', spatial), cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
  preempted = ''
  for line in proc.stdout:
    preempted += line
    if line.startswith('it 1/16'):
      proc.send_signal(signal.SIGTERM)
  assert proc.wait(timeout=600) == 0, preempted[-3000:]
  stopped = re.search(r'stopped by a preemption notice after iteration (\d+)', preempted)
  assert stopped and int(stopped.group(1)) < 16, preempted[-3000:]
  resumed = _launch(env, 2, 2, f'--workdir={two}', spatial)
  assert f'resumed from {two} at iteration {stopped.group(1)}' in resumed
  assert 'mesh 2 x 2 (data x spatial) over 4 devices in 1 process\n' in single
  assert 'mesh 2 x 2 (data x spatial) over 4 devices in 2 processes\n' in resumed
  jax.tree_util.tree_map(np.testing.assert_array_equal, _final(one, 16), _final(two, 16))
  assert _history(one) == _history(two)
  tables = _evaluations(single), _evaluations(preempted + resumed)
  assert len(tables[0]) == 2 and tables[0] == tables[1], tables
