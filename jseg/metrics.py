"""Dataset-level semantic segmentation metrics: MMSeg's ``IoUMetric`` (aAcc, mIoU, mAcc).

:func:`confusion_matrix` (jit-friendly, on device) counts ``(C, C)`` (label, prediction) pairs;
pixels whose label is ``ignore_index`` or outside ``[0, C)`` are left out. Summed over the data
set on the host in int64, :func:`summarize` turns the matrix into MMSeg's metrics through
MMSeg's four per-class areas ``[intersect, union, pred_label, label]``
(:func:`confusion_to_areas`). One corner case differs from MMSeg, which real data sets never
have: a label that is neither ``ignore_index`` nor a class drops its pixel here, while MMSeg's
histc still counts the pixel's prediction in the predicted class's union.

Definitions (MMSeg's ``total_area_to_metrics``):

- ``IoU[c] = intersect[c] / union[c]``, ``Acc[c] = intersect[c] / label[c]``: NaN where
  the denominator is 0 (the class is absent from both prediction and label, resp. label);
- ``mIoU`` / ``mAcc`` = ``nanmean`` over classes, ``aAcc = sum(intersect) / sum(label)``.

:func:`summarize` reports them like MMSeg: percent, rounded to 2 decimals (``{'aAcc', 'mIoU',
'mAcc', 'IoU': [per class], 'Acc': [per class]}``), and :func:`format_table` prints MMSeg's
per-class table. MMSeg sums float32 areas; jseg's
int64 sums are exact, so on large data sets the two can differ in the 7th digit.

MMSeg 1.x applies ``reduce_zero_label`` (ADE20K) when it loads the label (test pipeline's
LoadAnnotations); here ``reduce_zero_label=True`` does the same mapping on raw labels
(0 -> 255 ignored, the others -1), for callers that hold raw labels.
"""
import warnings
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import numpy as np

def confusion_matrix(pred, label, num_classes: int, ignore_index: int = 255,
                     reduce_zero_label: bool = False):
  """``(C, C)`` int32 counts of (label, prediction) pairs, in jax.numpy (jit-friendly; int32
  holds 2**31 pixels per call).

  ``pred`` / ``label``: integer arrays of the same shape (one image or a batch; pad labels
  with ``ignore_index``). Pixels with an ignored or out-of-range label, or an
  out-of-range prediction, are not counted. Sum the matrices on the host in int64.
  """
  import jax.numpy as jnp
  c = num_classes
  pred = jnp.asarray(pred).astype(jnp.int32).reshape(-1)
  label = jnp.asarray(label).astype(jnp.int32).reshape(-1)
  if reduce_zero_label:  # uint8 in MMSeg: 0 -> 255 -> 254 -> 255, 255 -> 254 -> 255, others -1
    label = jnp.where((label == 0) | (label == 255), 255, label - 1)
  ok = (label != ignore_index) & (label >= 0) & (label < c) & (pred >= 0) & (pred < c)
  index = jnp.where(ok, label * c + pred, c * c)
  return jnp.bincount(index, length=c * c + 1)[:c * c].reshape(c, c).astype(jnp.int32)


def confusion_to_areas(confusion) -> np.ndarray:
  """``(C, C)`` confusion matrix -> ``(4, C)`` areas [intersect, union, pred, label]."""
  hist = np.asarray(confusion, np.int64)
  inter = np.diag(hist)
  pred = hist.sum(0)
  label = hist.sum(1)
  return np.stack([inter, pred + label - inter, pred, label])


def areas_to_metrics(areas) -> Dict[str, object]:
  """MMSeg's ``total_area_to_metrics`` for 'mIoU': per-class IoU / Acc (NaN where the
  denominator is 0), their nanmeans and aAcc, unrounded fractions in [0, 1]."""
  inter, union, _, label = (np.asarray(a, np.float64) for a in areas)
  with np.errstate(divide='ignore', invalid='ignore'):
    iou = inter / union
    acc = inter / label
    aacc = inter.sum() / label.sum()
  out = OrderedDict(aAcc=float(aacc), IoU=iou, Acc=acc)
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', RuntimeWarning)  # nanmean of all-NaN -> nan
    out['mIoU'] = float(np.nanmean(iou))
    out['mAcc'] = float(np.nanmean(acc))
  return out


def summarize(confusion) -> Dict[str, object]:
  """MMSeg's IoUMetric results from a summed ``(C, C)`` :func:`confusion_matrix`: ``aAcc``,
  ``mIoU``, ``mAcc`` (floats) and per-class ``IoU`` / ``Acc`` (lists, NaN for absent
  classes), all in percent rounded to 2 decimals as MMSeg logs them."""
  m = areas_to_metrics(confusion_to_areas(confusion))
  out = {k: float(np.round(m[k] * 100, 2)) for k in ('aAcc', 'mIoU', 'mAcc')}
  for k in ('IoU', 'Acc'):
    out[k] = [float(v) for v in np.round(m[k] * 100, 2)]
  return out


def format_table(summary: Dict[str, object], class_names: Optional[Sequence[str]] = None
                 ) -> str:
  """MMSeg's per-class table ('Class | IoU | Acc', percent) of a :func:`summarize` result,
  followed by the aAcc / mIoU / mAcc line."""
  iou, acc = summary['IoU'], summary['Acc']
  if class_names is None:
    class_names = [str(i) for i in range(len(iou))]
  fmt = lambda v: 'nan' if np.isnan(v) else f'{v:.2f}'
  rows = [('Class', 'IoU', 'Acc')] + [(str(n), fmt(i), fmt(a))
                                      for n, i, a in zip(class_names, iou, acc)]
  widths = [max(len(r[k]) for r in rows) + 2 for k in range(3)]
  line = '+' + '+'.join('-' * w for w in widths) + '+'
  text = lambda r: '|' + '|'.join(v.center(w) for v, w in zip(r, widths)) + '|'
  total = ', '.join(f'{k}: {summary[k]:.2f}' for k in ('aAcc', 'mIoU', 'mAcc'))
  return '\n'.join([line, text(rows[0]), line] + [text(r) for r in rows[1:]] + [line, total])
