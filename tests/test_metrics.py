"""jseg.metrics against MMSeg 1.2.2's IoUMetric on random predictions."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import mmseg_ref  # noqa: F401  (installs the mmcv.ops stand-in before any mmseg import)
from mmseg.evaluation import IoUMetric

from jseg import metrics as M

C = 7


def _pairs(seed, num, absent=(5,), out_of_range=False):
  """Random (pred, label) pairs of odd sizes: ignored pixels, classes never present."""
  rng = np.random.default_rng(seed)
  present = [c for c in range(C) if c not in absent]
  pairs = []
  for i in range(num):
    h, w = 23 + 4 * i, 37 - 2 * i
    label = rng.choice(present, (h, w)).astype(np.uint8)
    label[rng.random((h, w)) < 0.15] = 255
    pred = label.copy()
    wrong = rng.random((h, w)) < 0.4
    pred[wrong] = rng.choice(present, wrong.sum())
    if out_of_range:
      label[0, :3] = C + 3  # neither ignored nor a class: MMSeg's histc drops it
      pred[1, :3] = C + 1
    pairs.append((pred, label))
  return pairs


def _mmseg(pairs, rzl=False):
  """MMSeg's IoUMetric: per-class IoU / Acc, aAcc and the rounded summary."""
  metric = IoUMetric(ignore_index=255, iou_metrics=['mIoU'])
  metric.dataset_meta = dict(classes=[f'c{i}' for i in range(C)])
  for pred, label in pairs:
    if rzl:  # MMSeg 1.x reduces the label when loading it (LoadAnnotations)
      from jseg.data.transforms import reduce_zero_label
      label = reduce_zero_label(label)
    metric.process({}, [dict(pred_sem_seg=dict(data=torch.from_numpy(pred.astype(np.int64))[None]),
                             gt_sem_seg=dict(data=torch.from_numpy(label.astype(np.int64))[None]))])
  results = list(metric.results)
  summary = metric.compute_metrics(results)
  r = tuple(zip(*results))
  per_class = IoUMetric.total_area_to_metrics(sum(r[0]), sum(r[1]), sum(r[2]), sum(r[3]))
  areas = np.stack([sum(r[k]).numpy() for k in range(4)])
  return summary, per_class, areas


def _confusion(pairs, rzl=False):
  f = jax.jit(M.confusion_matrix, static_argnums=(2, 3, 4))
  hist = np.zeros((C, C), np.int64)
  for pred, label in pairs:
    hist += np.asarray(f(jnp.asarray(pred), jnp.asarray(label), C, 255, rzl))
  return hist


def _check(hist, summary, per_class, areas):
  np.testing.assert_array_equal(M.confusion_to_areas(hist), areas)
  m = M.areas_to_metrics(M.confusion_to_areas(hist))
  for key in ('IoU', 'Acc'):
    np.testing.assert_array_equal(np.isnan(m[key]), np.isnan(per_class[key]))
    np.testing.assert_allclose(m[key], per_class[key], rtol=1e-6, equal_nan=True)
  np.testing.assert_allclose(m['aAcc'], per_class['aAcc'], rtol=1e-6)
  ours = M.summarize(hist)
  for k in ('aAcc', 'mIoU', 'mAcc'):
    assert ours[k] == pytest.approx(float(summary[k]), abs=1e-4)  # MMSeg: float32
  for k in ('IoU', 'Acc'):  # MMSeg's table values
    np.testing.assert_allclose(ours[k], np.round(per_class[k] * 100, 2), atol=1e-4)


@pytest.mark.parametrize('rzl', [False, True])
def test_confusion_matrix_matches_mmseg(rzl):
  pairs = _pairs(0, 5, absent=(5,))
  summary, per_class, areas = _mmseg(pairs, rzl=rzl)
  hist = _confusion(pairs, rzl)
  if not rzl:  # class 5 is in neither labels nor predictions
    assert np.isnan(M.summarize(hist)['IoU'][5]) and np.isnan(M.summarize(hist)['Acc'][5])
  _check(hist, summary, per_class, areas)
  # eager call with a numpy label, as a user makes it
  np.testing.assert_array_equal(
      np.asarray(M.confusion_matrix(jnp.asarray(pairs[0][0]), pairs[0][1], C, 255, rzl)),
      _confusion(pairs[:1], rzl))


def test_class_only_predicted_has_iou_zero_acc_nan():
  pairs = _pairs(1, 3, absent=(2, 5))
  pairs[0][0][0, 0] = 2  # predicted but never labelled: IoU 0, Acc NaN
  summary, per_class, areas = _mmseg(pairs)
  hist = _confusion(pairs)
  m = M.summarize(hist)
  assert m['IoU'][2] == 0 and np.isnan(m['Acc'][2]) and np.isnan(m['IoU'][5])
  _check(hist, summary, per_class, areas)


def test_reduce_zero_label_of_raw_labels_matches_mmseg():
  rng = np.random.default_rng(2)
  pairs = []
  for i in range(4):  # raw ADE-style labels 0..C (0: "other", ignored), 255 ignored too
    h, w = 29 + i, 31 - 3 * i
    label = rng.integers(0, C + 1, (h, w)).astype(np.uint8)
    label[label == 4] = 3  # reduced class 3 absent
    label[rng.random((h, w)) < 0.1] = 255
    pred = np.where(rng.random((h, w)) < 0.5, label.astype(int) - 1, rng.integers(0, C, (h, w)))
    pred = np.clip(pred, 0, C - 1).astype(np.uint8)
    pred[pred == 3] = 2
    pairs.append((pred, label))
  summary, per_class, areas = _mmseg(pairs, rzl=True)
  hist = _confusion(pairs, rzl=True)
  assert np.isnan(M.summarize(hist)['IoU'][3])
  _check(hist, summary, per_class, areas)


def test_out_of_range_label_drops_its_pixel():
  """The documented corner case: MMSeg's histc keeps the prediction of a pixel whose label is
  neither ignored nor a class in pred_label (and union); jseg drops the pixel. Intersections
  and label areas agree."""
  pairs = _pairs(3, 4, out_of_range=True)
  for pred, _ in pairs:
    pred[1, :3] = 0  # predictions are classes (argmax): only the labels are out of range
  _, _, areas = _mmseg(pairs)
  ours = M.confusion_to_areas(_confusion(pairs))
  np.testing.assert_array_equal(ours[[0, 3]], areas[[0, 3]])
  dropped = [pred[label == C + 3] for pred, label in pairs]
  extra = np.bincount(np.concatenate(dropped), minlength=C)[:C]
  np.testing.assert_array_equal(ours[2] + extra, areas[2])


def test_table():
  summary = M.summarize(M.confusion_matrix(np.array([[0, 1], [1, 1]]),
                                           np.array([[0, 1], [0, 255]]), 3))
  # road: I 1, U 2 -> 50; sidewalk: I 1, U 2 -> 50, acc 100; building: NaN.
  assert {k: summary[k] for k in ('aAcc', 'mIoU', 'mAcc')} == \
      {'aAcc': 66.67, 'mIoU': 50.0, 'mAcc': 75.0}
  table = M.format_table(summary, ['road', 'sidewalk', 'building'])
  lines = table.splitlines()
  assert [l.split()[1::2][:3] for l in lines[3:6]] == [
      ['road', '50.00', '50.00'], ['sidewalk', '50.00', '100.00'], ['building', 'nan', 'nan']]
  assert 'Class' in lines[1] and 'IoU' in lines[1] and 'Acc' in lines[1]
  assert lines[-1] == 'aAcc: 66.67, mIoU: 50.00, mAcc: 75.00'
