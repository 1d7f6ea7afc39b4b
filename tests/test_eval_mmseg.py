"""Evaluating an imported MMSeg checkpoint gives MMSeg's own predictions' mIoU (IoUMetric)."""
import numpy as np
import torch

import mmseg_ref as ref
from mmseg.evaluation import IoUMetric
from mmseg.models.utils import resize

from jseg import config as jconfig
from jseg import train
from jseg.checkpoints import load_variables
from jseg.data import datasets, prepare, transforms
from jseg.models import build_segmentor
from parity import mmseg_fcn

SPEC = 'configs/fcn.py:r18w16-d8_64x64_2k_synthetic'


def test_eval_of_imported_checkpoint_equals_mmseg_iou_metric(tmp_path, monkeypatch):
  data_dir = str(tmp_path / 'data')
  prepare.prepare('synthetic', data_dir=data_dir, num_samples={'train': 2, 'val': 6}, size=48)
  monkeypatch.setenv('JSEG_DATA', data_dir)
  config = jconfig.load(SPEC)
  mm = mmseg_fcn(config, seed=11)
  torch.save({'meta': {}, 'state_dict': mm.state_dict()}, tmp_path / 'fcn.pth')

  got = train.evaluate(config, build_segmentor(config),
                       load_variables(config, str(tmp_path / 'fcn.pth')), progress=False)

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
