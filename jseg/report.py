"""What a run shows: progress lines with rate and ETA, TensorBoard scalars, curves and
prediction pictures in the workdir; a resumed run continues the curves. Only process 0 writes
(``enabled``)."""
import datetime
import itertools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from jseg import checkpoints
from jseg import metrics as jmetrics
from jseg import visualize


class Reporter:

  def __init__(self, workdir: str, config, enabled: bool = True, start: int = 0):
    """``start``: the iteration a resumed run continues from; what was logged after it (before
    a kill) is dropped from the history and from TensorBoard (``purge_step``)."""
    self.workdir, self.config, self.enabled = workdir, config, enabled
    self.history = {'train': [], 'eval': []}
    self.writer = None
    if enabled:
      os.makedirs(workdir, exist_ok=True)
      if start and os.path.exists(self._history_path):
        with open(self._history_path) as f:
          saved = json.load(f)
        self.history = {k: [tuple(p) for p in saved[k] if p[0] <= start] for k in self.history}
      from tensorboardX import SummaryWriter
      self.writer = SummaryWriter(os.path.join(workdir, 'tensorboard'), purge_step=start or None)

  @property
  def _history_path(self) -> str:
    return os.path.join(self.workdir, 'history.json')

  def save_history(self) -> None:
    """Written with each checkpoint, so a resumed run continues the curves."""
    if self.enabled:
      checkpoints.write_atomic(self._history_path, json.dumps(self.history))

  def text(self, message: str) -> None:
    if self.enabled:
      print(message, flush=True)

  def train(self, it: int, scalars: dict, lr: float, images_per_s: float, input_wait: float,
            skipped: tuple = (), overflows: tuple = ()) -> None:
    """``input_wait``: the share of the time since the last line that the loop waited for the
    next batch (near 0: the step is the bottleneck; high: the input pipeline is);
    ``skipped``: the iterations whose non-finite update was dropped so far; ``overflows``:
    those whose update the loss scale dropped (``scalars['loss_scale']``: its value)."""
    if not self.enabled:
      return
    total = self.config.train.iterations
    eta = (total - it) * self.config.train.batch_size / max(images_per_s, 1e-9)
    scale = scalars.get('loss_scale')
    scalars = {k: v for k, v in scalars.items() if k not in ('skipped', 'loss_scale')}
    terms = ' '.join(f'{k} {float(v):.4f}' for k, v in sorted(scalars.items()))
    note = f' | skipped {len(skipped)} non-finite (last: it {skipped[-1]})' if skipped else ''
    if scale is not None:
      note += f' | loss scale {float(scale):g}'
      self.writer.add_scalar('train/loss_scale', float(scale), it)
    if overflows:
      note += f' | {len(overflows)} overflows skipped (last: it {overflows[-1]})'
    self.text(f'it {it}/{total} | {terms} | lr {lr:.5f} | {images_per_s:.1f} img/s | '
              f'input wait {input_wait:.0%} | eta {datetime.timedelta(seconds=int(eta))}{note}')
    for k, v in scalars.items():
      self.writer.add_scalar(f'train/{k}', float(v), it)
    self.writer.add_scalar('train/lr', lr, it)
    self.writer.add_scalar('train/img_per_s', images_per_s, it)
    self.writer.add_scalar('train/input_wait', input_wait, it)
    self.writer.add_scalar('train/skipped', len(skipped), it)
    self.history['train'].append((it, float(scalars['loss'])))

  def eval(self, it: int, metrics: dict) -> None:
    if not self.enabled:
      return
    from jseg.data import datasets
    names = datasets.dataset_info(self.config.data.test_dataset).classes
    self.text(f'evaluation at iteration {it}:\n' + jmetrics.format_table(metrics, names))
    for k in ('mIoU', 'mAcc', 'aAcc'):
      self.writer.add_scalar(f'val/{k}', float(metrics[k]), it)
    self.writer.flush()
    self.history['eval'].append((it, float(metrics['mIoU'])))
    self._curves()

  def _curves(self) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    if self.history['train']:
      ax1.plot(*zip(*self.history['train']))
    ax1.set(xlabel='iteration', ylabel='training loss', title=self.config.name)
    ax2.plot(*zip(*self.history['eval']), marker='o')
    ax2.set(xlabel='iteration', ylabel='val mIoU (%)', ylim=(0, 100))
    fig.tight_layout()
    fig.savefig(os.path.join(self.workdir, 'curves.png'), dpi=100)
    plt.close(fig)

  def close(self, model, variables, num_images: int = 4) -> None:
    """Writes ``predictions.png``: image, ground truth and prediction of ``num_images`` val
    images (none: a stopped run)."""
    if not self.enabled:
      return
    self.writer.close()
    if not num_images:
      return
    from jseg.data import datasets, loader
    from jseg.inference import make_predict_fn, output_align_corners
    palette = datasets.dataset_info(self.config.data.test_dataset).palette
    predict = make_predict_fn(model, self.config.test, output_align_corners(self.config))
    variables = jax.device_get(variables)
    rows = []
    samples = loader.eval_samples(self.config, 'val', progress=False, with_image=True)
    for inputs, label, image in itertools.islice(samples, num_images):
      pred = np.asarray(jnp.argmax(predict(variables, inputs, tuple(label.shape))[0], -1))
      rows.append([image, visualize.colorize(label, palette), visualize.colorize(pred, palette)])
    path = os.path.join(self.workdir, 'predictions.png')
    visualize.save_rgb(path, visualize.side_by_side(rows))
    self.text(f'wrote {path} (image | ground truth | prediction) and curves.png')
