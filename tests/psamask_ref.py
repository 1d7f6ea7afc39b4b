"""PSAMask for the reference MMSeg, transcribed from mmcv's CPU kernel (psamask.cpp).

``psa_mask`` loops over feature pixels as the kernel does, copying the valid mask window of
each at once. ``PSAMask`` (the module MMSeg's PSAHead builds) runs the same copy as one indexed
assignment, :func:`psa_mask_indexed`, which autograd differentiates in one gather: the loop's
16k in-place slice writes at 512x1024 made a train step's backward run for tens of minutes.
"""
import functools

import torch
from torch import nn


def psa_mask(x: torch.Tensor, psa_type: int, mask_size) -> torch.Tensor:
  n, c, h_feat, w_feat = x.shape
  h_mask, w_mask = mask_size
  assert c == h_mask * w_mask
  half_h, half_w = (h_mask - 1) // 2, (w_mask - 1) // 2
  mask = x.reshape(n, h_mask, w_mask, h_feat, w_feat)
  out = x.new_zeros(n, h_feat * w_feat, h_feat, w_feat)
  out_img = out.view(n, h_feat, w_feat, h_feat, w_feat)  # (n, ph, pw, h, w) for collect
  for h in range(h_feat):
    for w in range(w_feat):
      hs, he = max(0, half_h - h), min(h_mask, h_feat + half_h - h)
      ws, we = max(0, half_w - w), min(w_mask, w_feat + half_w - w)
      window = mask[:, hs:he, ws:we, h, w]
      fh = slice(hs + h - half_h, he + h - half_h)
      fw = slice(ws + w - half_w, we + w - half_w)
      if psa_type == 0:  # collect: buffer[n, feature pos, h, w]
        out_img[:, fh, fw, h, w] = window
      else:  # distribute: buffer[n, h * W + w, feature pos]
        out_img[:, h, w, fh, fw] = window
  return out


@functools.lru_cache(maxsize=2)
def _indices(psa_type: int, h_feat: int, w_feat: int, h_mask: int, w_mask: int):
  """Flat (source, target) positions of :func:`psa_mask`'s copies, in the per-image
  (mask, h, w) input and (h_feat * w_feat, h, w) output."""
  i, j, h, w = torch.meshgrid(torch.arange(h_mask), torch.arange(w_mask), torch.arange(h_feat),
                              torch.arange(w_feat), indexing='ij')
  ph, pw = i + h - (h_mask - 1) // 2, j + w - (w_mask - 1) // 2  # the feature position
  valid = (ph >= 0) & (ph < h_feat) & (pw >= 0) & (pw < w_feat)
  source = ((i * w_mask + j) * h_feat + h) * w_feat + w
  if psa_type == 0:  # collect
    target = ((ph * w_feat + pw) * h_feat + h) * w_feat + w
  else:  # distribute
    target = ((h * w_feat + w) * h_feat + ph) * w_feat + pw
  return source[valid], target[valid]


def psa_mask_indexed(x: torch.Tensor, psa_type: int, mask_size) -> torch.Tensor:
  """:func:`psa_mask` as one indexed copy (equal to it; tests/test_parity_psa_cc.py)."""
  n, c, h_feat, w_feat = x.shape
  assert c == mask_size[0] * mask_size[1]
  source, target = _indices(psa_type, h_feat, w_feat, *mask_size)
  out = x.new_zeros(n, (h_feat * w_feat) ** 2)
  out[:, target] = x.reshape(n, -1)[:, source]
  return out.view(n, h_feat * w_feat, h_feat, w_feat)


class PSAMask(nn.Module):

  def __init__(self, psa_type: str, mask_size=None):
    super().__init__()
    assert psa_type in ('collect', 'distribute')
    self.psa_type_enum = 0 if psa_type == 'collect' else 1
    self.mask_size = tuple(mask_size)

  def forward(self, x):
    return psa_mask_indexed(x, self.psa_type_enum, self.mask_size)
