"""The notebooks run end to end (tiny settings: JSEG_NOTEBOOK_SMOKE=1) and are stored without
outputs."""
import os

import nbclient
import nbformat
import pytest

import fast_compile

NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'notebooks')


def _run(name, monkeypatch, tmp_path, **env):
  for key, value in dict(JSEG_NOTEBOOK_SMOKE='1', JSEG_DATA=str(tmp_path / 'data'),
                         JSEG_NOTEBOOK_WORKDIR=str(tmp_path / 'work'),
                         XLA_FLAGS=fast_compile.env()['XLA_FLAGS'], **env).items():
    monkeypatch.setenv(key, value)  # the kernel inherits the environment
  nb = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
  nbclient.NotebookClient(nb, timeout=600, kernel_name='python3',
                          resources={'metadata': {'path': NOTEBOOKS}}).execute()
  return nb


def _text(nb):
  return '\n'.join(out.get('text', '') for cell in nb.cells if cell.cell_type == 'code'
                   for out in cell.outputs)


@pytest.mark.parametrize('name', ['inference_demo.ipynb', 'train_synthetic.ipynb'])
def test_notebook_is_stored_without_outputs(name):
  nb = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
  nbformat.validate(nb)
  assert all(not c.outputs and c.execution_count is None for c in nb.cells
             if c.cell_type == 'code'), f'clear the outputs of {name} before committing'


def test_inference_demo_runs(monkeypatch, tmp_path):
  nb = _run('inference_demo.ipynb', monkeypatch, tmp_path,
            JSEG_NOTEBOOK_TRAIN_WORKDIR=str(tmp_path / 'not_trained'))
  text = _text(nb)
  assert 'stand-in from random weights' in text
  assert 'identical arrays' in text
  work = tmp_path / 'work'
  assert (work / 'standin_mmseg.pth').is_file()
  assert (work / 'overlay.png').stat().st_size > 0
  assert (work / 'imported').is_dir()


def test_train_synthetic_runs(monkeypatch, tmp_path):
  nb = _run('train_synthetic.ipynb', monkeypatch, tmp_path)
  text = _text(nb)
  assert 'last evaluation: mIoU' in text
  assert "'val/mIoU'" in text and "'train/loss'" in text
  work = tmp_path / 'work'
  for picture in ('curves.png', 'predictions.png'):
    assert (work / picture).stat().st_size > 0
  assert (work / 'data' / 'synthetic').is_dir()  # smoke data, not the user's data dir
