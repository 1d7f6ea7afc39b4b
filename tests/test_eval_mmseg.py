"""Evaluating an imported MMSeg checkpoint gives MMSeg's own predictions' mIoU (IoUMetric)."""
import os
import re
import subprocess
import sys

import numpy as np
import torch

import mmseg_ref as ref
from mmseg.evaluation import IoUMetric
from mmseg.models.utils import resize

from jseg import config as jconfig
from jseg.data import datasets, prepare, transforms
from parity import mmseg_fcn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SPEC = 'configs/fcn.py:r18w16-d8_64x64_2k_synthetic'


def test_eval_of_imported_checkpoint_equals_mmseg_iou_metric(tmp_path, monkeypatch):
  """``--mode=eval`` on 4 devices (6 images: a batch of 4, then 2 padded to 4), one compile."""
  data_dir = str(tmp_path / 'data')
  prepare.prepare('synthetic', data_dir=data_dir, num_samples={'train': 2, 'val': 6}, size=48)
  monkeypatch.setenv('JSEG_DATA', data_dir)
  config = jconfig.load(SPEC)
  mm = mmseg_fcn(config, seed=11)
  torch.save({'meta': {}, 'state_dict': mm.state_dict()}, tmp_path / 'fcn.pth')

  done = subprocess.run(
      [sys.executable, '-m', 'jseg.main', f'--config={SPEC}', '--mode=eval',
       f'--checkpoint={tmp_path / "fcn.pth"}'], cwd=ROOT, capture_output=True, text=True,
      timeout=600, env=dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=4'))
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
  assert done.stdout.count('eval val: compiling for input 64x64, labels 48x48') == 1, done.stdout
  assert re.search(r'eval val: 6 images in .* img/s on 4 device\(s\)', done.stdout), done.stdout
  got = {k: float(v) for k, v in re.findall(r'(aAcc|mIoU|mAcc): ([\d.]+)', done.stdout)}

  metric = IoUMetric(ignore_index=255)
  metric.dataset_meta = dict(classes=datasets.dataset_info('synthetic').classes)
  pipeline = transforms.test_pipeline(config.data)  # equal to MMSeg's (test_transforms.py)
  source = datasets.open_split('synthetic', 'val', data_dir)
  for i in range(len(source)):
    out = pipeline(source[i])
    label = out['gt_seg_map']
    with torch.no_grad():
      logits = mm.inference(ref.nchw(out['img'][None]),
                            [dict(ori_shape=label.shape, img_shape=out['img'].shape[:2],
                                  pad_shape=out['img'].shape[:2])])
      # MMSeg's postprocess_result: back to the original size with the head's align_corners.
      logits = resize(logits, size=label.shape, mode='bilinear', align_corners=False)
    pred = logits.argmax(1)
    metric.process({}, [dict(pred_sem_seg=dict(data=pred),
                             gt_sem_seg=dict(data=torch.from_numpy(label.astype(np.int64))[None]))])
  want = metric.compute_metrics(metric.results)
  assert 0 < want['mIoU'] < 100
  for key in ('mIoU', 'mAcc', 'aAcc'):
    assert abs(got[key] - want[key]) <= 0.011, (key, got[key], want[key])
