"""Dataset-level semantic segmentation metrics: MMSeg's ``IoUMetric`` (aAcc, mIoU, mAcc).

Two ways to count (equal on real data), both summed over the dataset on the host in int64:

- :func:`confusion_matrix` (jit-friendly, on device): ``(C, C)`` counts, rows = label,
  columns = prediction; pixels whose label is ``ignore_index`` or outside ``[0, C)`` are
  left out. :func:`summarize` turns the summed matrix into metrics.
- :func:`intersect_and_union` (jit-friendly) / :func:`intersect_and_union_np` (host):
  MMSeg's four per-class areas ``(4, C)`` = ``[intersect, union, pred_label, label]``;
  :class:`IoUAccumulator` sums them, :func:`summarize_areas` gives the metrics. These
  match MMSeg also in the corner case of a label that is neither ``ignore_index`` nor a
  class (its pixel's prediction still counts in the predicted class's union, as in
  MMSeg's histc), which real data sets never have.

Definitions (MMSeg's ``total_area_to_metrics``):

- ``IoU[c] = intersect[c] / union[c]``, ``Acc[c] = intersect[c] / label[c]``: NaN where
  the denominator is 0 (the class is absent from both prediction and label, resp. label);
- ``mIoU`` / ``mAcc`` = ``nanmean`` over classes, ``aAcc = sum(intersect) / sum(label)``.

:func:`summarize` / :func:`summarize_areas` report them like MMSeg: percent, rounded to 2
decimals (``{'aAcc', 'mIoU', 'mAcc', 'IoU': [per class], 'Acc': [per class]}``), and
:func:`format_table` prints MMSeg's per-class table. MMSeg sums float32 areas; jseg's
int64 sums are exact, so on large data sets the two can differ in the 7th digit.

MMSeg 1.x applies ``reduce_zero_label`` (ADE20K) when it loads the label (test pipeline's
LoadAnnotations); here ``reduce_zero_label=True`` does the same mapping on raw labels
(0 -> 255 ignored, the others -1), for callers that hold raw labels.
"""
import warnings
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import numpy as np

AREA_NAMES = ('intersect', 'union', 'pred_label', 'label')


def _reduce_zero_label(label, xp):
  # uint8 in MMSeg: 0 -> 255 -> 254 -> 255, 255 -> 254 -> 255, others -1.
  label = label.astype(xp.int32)
  return xp.where((label == 0) | (label == 255), 255, label - 1)


def intersect_and_union(pred, label, num_classes: int, ignore_index: int = 255,
                        reduce_zero_label: bool = False):
  """Per-class areas of a prediction / label pair or batch, in jax.numpy (jit-friendly).

  ``pred`` and ``label`` are integer arrays of the same shape (e.g. (N, H, W)); padding
  pixels should carry ``ignore_index`` in ``label``. ``num_classes``, ``ignore_index`` and
  ``reduce_zero_label`` are static. Returns ``(4, num_classes)`` int32 areas
  ``[intersect, union, pred_label, label]``; int32 holds up to 2**31 pixels per call, so
  sum calls on the host (:class:`IoUAccumulator`). Works under ``jax.jit`` with sharded
  inputs: the bincounts reduce over the whole (global) batch.
  """
  import jax.numpy as jnp
  return _intersect_and_union(jnp, pred, label, num_classes, ignore_index, reduce_zero_label)


def intersect_and_union_np(pred, label, num_classes: int, ignore_index: int = 255,
                           reduce_zero_label: bool = False) -> np.ndarray:
  """Host (numpy) version of :func:`intersect_and_union`; returns int64 ``(4, C)`` areas."""
  return _intersect_and_union(np, np.asarray(pred), np.asarray(label), num_classes,
                              ignore_index, reduce_zero_label)


def confusion_matrix(pred, label, num_classes: int, ignore_index: int = 255,
                     reduce_zero_label: bool = False):
  """``(C, C)`` int32 counts of (label, prediction) pairs, in jax.numpy (jit-friendly).

  ``pred`` / ``label``: integer arrays of the same shape (one image or a batch; pad labels
  with ``ignore_index``). Pixels with an ignored or out-of-range label, or an
  out-of-range prediction, are not counted. Sum the matrices on the host in int64.
  """
  import jax.numpy as jnp
  c = num_classes
  if reduce_zero_label:
    label = _reduce_zero_label(label, jnp)
  pred = jnp.asarray(pred).astype(jnp.int32).reshape(-1)
  label = jnp.asarray(label).astype(jnp.int32).reshape(-1)
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


def _intersect_and_union(xp, pred, label, num_classes, ignore_index, reduce_zero_label):
  c = num_classes
  if reduce_zero_label:
    label = _reduce_zero_label(label, xp)
  pred = pred.astype(xp.int32).reshape(-1)
  label = label.astype(xp.int32).reshape(-1)
  valid = label != ignore_index
  label_ok = valid & (label >= 0) & (label < c)
  pred_ok = valid & (pred >= 0) & (pred < c)
  # Out-of-range / ignored pixels go to the dump bin c, dropped afterwards.
  label_bin = xp.where(label_ok, label, c)
  pred_bin = xp.where(pred_ok, pred, c)
  inter_bin = xp.where(label_ok & (pred == label), label, c)
  if xp is np:
    count = lambda x: np.bincount(x, minlength=c + 1)[:c].astype(np.int64)
  else:
    count = lambda x: xp.bincount(x, length=c + 1)[:c].astype(xp.int32)
  area_intersect = count(inter_bin)
  area_pred = count(pred_bin)
  area_label = count(label_bin)
  area_union = area_pred + area_label - area_intersect
  return xp.stack([area_intersect, area_union, area_pred, area_label])


class IoUAccumulator:
  """Sums per-class areas over a dataset on the host (int64, exact).

  ``update(pred, label)`` counts one prediction / label pair (or a batch) with numpy;
  ``add(areas)`` adds ``(4, C)`` areas computed on device by :func:`intersect_and_union`.
  ``metrics()`` / ``summary()`` give the results.
  """

  def __init__(self, num_classes: int, ignore_index: int = 255,
               reduce_zero_label: bool = False, class_names: Optional[Sequence[str]] = None):
    self.num_classes = num_classes
    self.ignore_index = ignore_index
    self.reduce_zero_label = reduce_zero_label
    self.class_names = class_names
    self.reset()

  def reset(self):
    self.areas = np.zeros((4, self.num_classes), np.int64)
    self.num_images = 0

  def update(self, pred, label):
    """Counts a (H, W) pair or a (N, H, W) batch (pad labels with ``ignore_index``)."""
    pred = np.asarray(pred)
    self.add(intersect_and_union_np(pred, label, self.num_classes, self.ignore_index,
                                    self.reduce_zero_label),
             num_images=pred.shape[0] if pred.ndim == 3 else 1)

  def add(self, areas, num_images: int = 1):
    areas = np.asarray(areas, np.int64)
    if areas.ndim == 3:  # (N, 4, C) per-image areas
      areas = areas.sum(0)
    self.areas += areas
    self.num_images += num_images

  def metrics(self) -> Dict[str, object]:
    return areas_to_metrics(self.areas)

  def summary(self) -> Dict[str, object]:
    return summarize_areas(self.areas)

  def table(self) -> str:
    return format_table(self.summary(), self.class_names)


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


def summarize_areas(areas) -> Dict[str, object]:
  """MMSeg's IoUMetric results from summed ``(4, C)`` areas: ``aAcc``, ``mIoU``, ``mAcc``
  (floats) and per-class ``IoU`` / ``Acc`` (lists, NaN for absent classes), all in
  percent rounded to 2 decimals as MMSeg logs them."""
  m = areas_to_metrics(areas)
  out = {k: float(np.round(m[k] * 100, 2)) for k in ('aAcc', 'mIoU', 'mAcc')}
  for k in ('IoU', 'Acc'):
    out[k] = [float(v) for v in np.round(m[k] * 100, 2)]
  return out


def summarize(confusion) -> Dict[str, object]:
  """:func:`summarize_areas` of a summed ``(C, C)`` :func:`confusion_matrix`."""
  return summarize_areas(confusion_to_areas(confusion))


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
