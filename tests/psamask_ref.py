"""PSAMask for the reference MMSeg, transcribed from mmcv's CPU kernel (psamask.cpp).

Forward only (the tests compare forwards and losses). Loops over feature pixels,
copying the valid mask window of each at once.
"""
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


class PSAMask(nn.Module):

  def __init__(self, psa_type: str, mask_size=None):
    super().__init__()
    assert psa_type in ('collect', 'distribute')
    self.psa_type_enum = 0 if psa_type == 'collect' else 1
    self.mask_size = tuple(mask_size)

  def forward(self, x):
    return psa_mask(x, self.psa_type_enum, self.mask_size)
