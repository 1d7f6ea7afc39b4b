"""The MMSeg parity harness shared by the test_parity_* files (and other tests).

``pair`` builds a jseg config and an MMSeg model with random weights;
``assert_eval_logits_equal`` and ``assert_train_losses_equal`` compare them in eval and
train mode; ``module_variables`` converts a bare MMSeg / mmcv module for block-level tests.
"""
import copy

import flax
import jax
import jax.numpy as jnp
import numpy as np
import torch

import mmseg_ref as ref
from jseg import config as jconfig
from jseg.convert import mmseg_key, mmseg_to_jseg
from jseg.models import build_segmentor, segmentor_loss
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

IGNORE = 255
ODD, EVEN = (97, 131), (64, 80)  # stride-8 features 13x17 (odd) and 8x10 (even)
SIZES = (ODD, EVEN)
FCN_R18 = ('fcn', 'r18-d8_512x1024_80k_cityscapes')


def _heads(model_cfg):
  """The decode head(s) (a list for a cascade) and the auxiliary head, if any."""
  heads = model_cfg.decode_head
  heads = list(heads) if isinstance(heads, (list, tuple)) else [heads]
  aux = model_cfg.get('auxiliary_head')
  return heads + (list(aux) if isinstance(aux, (list, tuple)) else [aux] if aux else [])


def pair(method, variant, seed=0, dropout=None):
  """(jseg config, MMSeg torch model) with the same random weights, after conversion.

  ``dropout`` sets every head's dropout_ratio in both (0 for train-mode comparisons).
  """
  config = jconfig.load(f'configs/{method}.py:{variant}')
  mm_cfg = ref.mmseg_config(method, variant).model
  if dropout is not None:
    config = copy.deepcopy(config)
    config.unlock()
    for head in _heads(config.model) + _heads(mm_cfg):
      head.dropout_ratio = dropout
  model = ref.randomize(ref.build_mmseg_model(mm_cfg), seed)
  if dropout == 0 and method == 'ann':
    # MMSeg's ANNHead calls self.dropout unconditionally; it is None at ratio 0.
    model.decode_head.dropout = torch.nn.Identity()
  return config, model


def mmseg_fcn(config, seed=0):
  """MMSeg's FCN (Cityscapes R-18 config) with a jseg FCN config's widths, classes and
  align_corners, random weights, in eval mode."""
  cfg = ref.mmseg_config(*FCN_R18).model
  bb = config.model.backbone
  cfg.backbone.update(base_channels=bb.base_channels, stem_channels=bb.stem_channels)
  for name in ('decode_head', 'auxiliary_head'):
    head = config.model[name]
    cfg[name].update(in_channels=head.in_channels, channels=head.channels,
                     num_classes=head.num_classes, align_corners=head.align_corners)
  return ref.randomize(ref.build_mmseg_model(cfg), seed).eval()


def random_labels(rng, n, h, w, num_classes, all_ignored=()):
  """Labels with ~20% ignored pixels; the images ``all_ignored`` are ignored entirely."""
  labels = rng.integers(0, num_classes, (n, h, w))
  labels[rng.random((n, h, w)) < 0.2] = IGNORE
  for i in all_ignored:
    labels[i] = IGNORE
  return labels


def data_samples(labels):
  """MMSeg SegDataSamples holding ``labels`` (N, H, W)."""
  return [SegDataSample(gt_sem_seg=PixelData(data=torch.from_numpy(l[None].astype(np.int64))))
          for l in labels]


def assert_eval_logits_equal(config, mm, sizes=SIZES, tol=1e-4):
  """Eval-mode logits of a batch of two at each (H, W) of ``sizes`` equal MMSeg's
  ``encode_decode`` (relative error to the largest logit)."""
  mm.eval()
  variables = mmseg_to_jseg(mm.state_dict(), config)
  apply = jax.jit(build_segmentor(config).apply)
  rng = np.random.default_rng(0)
  for h, w in sizes:
    x = rng.standard_normal((2, h, w, 3)).astype(np.float32)
    with torch.no_grad():
      want = ref.nhwc(mm.encode_decode(ref.nchw(x), [dict(img_shape=(h, w))] * 2))
    got = np.asarray(apply(variables, jnp.asarray(x)))
    assert got.shape == want.shape == (2, h, w, config.data.num_classes)
    err = ref.rel_err(got, want)
    print(f'{config.name} {h}x{w}: rel err {err:.2e}')
    assert err <= tol, f'{config.name} {h}x{w}: rel err {err:.2e}'


def assert_train_losses_equal(config, mm, all_ignored=(), must_have=(), tol=1e-4,
                              max_flipped=2, bn_tol=1e-4):
  """Train mode (batch statistics) on a 2x97x131 batch with ignored pixels: the same loss
  terms, each within ``tol``, and the same BN running statistics (within ``bn_tol``)
  afterwards.

  ``all_ignored``: images whose every pixel is ignored. ``must_have``: loss keys that must be
  among them. acc_seg may differ by ``max_flipped`` pixels (near-tie argmaxes).
  """
  mm.train()
  variables = mmseg_to_jseg(mm.state_dict(), config)
  rng = np.random.default_rng(1)
  n, h, w = 2, 97, 131
  x = rng.standard_normal((n, h, w, 3)).astype(np.float32)
  labels = random_labels(rng, n, h, w, config.data.num_classes, all_ignored)
  with torch.no_grad():
    want = mm.loss(ref.nchw(x), data_samples(labels))
  seg = build_segmentor(config)
  outputs, updates = jax.jit(lambda v, x: seg.apply(v, x, train=True, mutable=['batch_stats']))(
      variables, jnp.asarray(x))
  got = segmentor_loss(config.model, outputs, jnp.asarray(labels))
  assert set(got) == set(want)
  assert set(must_have) <= set(got), sorted(got)
  one_pixel = 100.0 / np.sum(labels != IGNORE)
  for key in sorted(want):
    if key.endswith('acc_seg'):
      flipped = abs(float(got[key]) - float(want[key])) / one_pixel
      print(f'{config.name} {key}: {flipped:.2f} pixels apart')
      assert flipped <= max_flipped + 1e-3, f'{key}: {float(got[key])} vs {float(want[key])}'
    else:
      err = ref.rel_err(got[key], want[key].numpy())
      print(f'{config.name} {key}: {float(got[key]):.7g} vs {float(want[key]):.7g}, '
            f'rel err {err:.2e}')
      assert err <= tol, f'{key}: {float(got[key])} vs {float(want[key])}'
  # BN running statistics after one training forward (torch: momentum 0.1, unbiased var).
  # A BN used twice (ANN's APNB key/query projection, OCRNet's FCN stage run again by
  # MMSeg's cascade) updates twice in both.
  new = mmseg_to_jseg(mm.state_dict(), config)['batch_stats']
  errs = jax.tree_util.tree_map(lambda a, b: ref.rel_err(a, b), updates['batch_stats'], new)
  err, path = max((e, '/'.join(p)) for p, e in
                  flax.traverse_util.flatten_dict(flax.core.unfreeze(errs)).items())
  assert err <= bn_tol, f'BN running statistics: {path} rel err {err:.2e}'


def module_variables(module, torch_module, *args, reshape=False):
  """jseg variables of a bare MMSeg head or mmcv block from its state_dict (keys relative
  to it, MMSeg's key rules); ``reshape`` lets non-kernel values take the jseg shape."""
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), *args))
  sd = {k: v.numpy() for k, v in torch_module.state_dict().items()
        if not k.endswith('num_batches_tracked')}
  flat = {}
  for path, leaf in flax.traverse_util.flatten_dict(flax.core.unfreeze(shapes)).items():
    value = sd.pop(mmseg_key(path))
    if path[-1] == 'kernel':
      value = value.transpose(2, 3, 1, 0)
    elif reshape:
      value = value.reshape(leaf.shape)
    assert value.shape == leaf.shape, path
    flat[path] = jnp.asarray(value)
  assert not sd, f'unconverted: {sorted(sd)}'
  return flax.traverse_util.unflatten_dict(flat)
