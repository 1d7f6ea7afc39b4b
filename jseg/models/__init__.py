"""jseg models: ``build_segmentor(config)`` returns a flax.linen Module."""
import jax
import jax.numpy as jnp

from jseg.models.backbones import build_backbone
from jseg.models.heads import build_head
from jseg.models.losses import segmentor_loss, total_loss
from jseg.models.segmentor import CascadeEncoderDecoder, EncoderDecoder


PRECISIONS = ('float32', 'bfloat16', 'float16')  # float16 trains with jseg.loss_scale
REMAT = ('none', 'blocks')


def build_segmentor(config) -> 'EncoderDecoder | CascadeEncoderDecoder':
  """Segmentor of ``config.model`` (a full jseg config or its ``model`` part).

  ``model.type`` is 'EncoderDecoder' (the default) or 'CascadeEncoderDecoder', whose
  ``decode_head`` is a list of ``num_stages`` heads. A full config also sets the precision
  policy (``precision``: the dtype convolutions, matmuls and resizes compute in; parameters,
  normalization statistics, softmax and losses stay float32) and ``train.remat`` ('blocks':
  the backbone's residual blocks are recomputed in the backward pass instead of stored).
  """
  model_cfg = config.model if 'model' in config else config
  precision = config.get('precision', 'float32') if 'model' in config else 'float32'
  remat = config.train.get('remat', 'none') if 'train' in config else 'none'
  if precision not in PRECISIONS:
    raise ValueError(f'precision={precision!r}; valid: {", ".join(PRECISIONS)}')
  if remat not in REMAT:
    raise ValueError(f'train.remat={remat!r}; valid: {", ".join(REMAT)}')
  dtype = None if precision == 'float32' else precision
  aux = model_cfg.get('auxiliary_head')
  aux = build_head(aux, 'auxiliary_head') if aux else None
  backbone = build_backbone(model_cfg.backbone, remat=remat == 'blocks')
  kind = model_cfg.get('type', 'EncoderDecoder')
  if kind == 'CascadeEncoderDecoder':
    heads = model_cfg.decode_head
    if len(heads) != model_cfg.num_stages:
      raise ValueError(f'model.num_stages={model_cfg.num_stages} but {len(heads)} decode heads')
    return CascadeEncoderDecoder(
        backbone=backbone,
        decode_head=tuple(build_head(h, f'decode_head.{i}') for i, h in enumerate(heads)),
        auxiliary_head=aux, dtype=dtype)
  if kind != 'EncoderDecoder':
    raise ValueError(f'model.type={kind!r}; valid: CascadeEncoderDecoder, EncoderDecoder')
  return EncoderDecoder(
      backbone=backbone, decode_head=build_head(model_cfg.decode_head, 'decode_head'),
      auxiliary_head=aux, dtype=dtype)


def init_variables(model, rng) -> dict:
  """``model``'s variables drawn by its initializers (MMSeg's ``init_weights`` rules).

  They do not depend on the image size: a 64x64 image traces. The unpartitioned threefry
  compiles 2.3x faster on XLA:CPU (PSPNet R-50: 11 vs 25 s) and loses nothing here: the
  variables are created whole, not sharded.
  """
  with jax.threefry_partitionable(False):
    return jax.jit(model.init)(rng, jnp.zeros((1, 64, 64, 3), jnp.float32))


__all__ = ['build_segmentor', 'init_variables', 'segmentor_loss', 'total_loss', 'EncoderDecoder',
           'CascadeEncoderDecoder']
