"""jseg models: ``build_segmentor(config)`` returns a flax.linen Module."""
from jseg.models.backbones import build_backbone
from jseg.models.heads import build_head
from jseg.models.losses import segmentor_loss, total_loss
from jseg.models.segmentor import CascadeEncoderDecoder, EncoderDecoder


def build_segmentor(config) -> 'EncoderDecoder | CascadeEncoderDecoder':
  """Segmentor of ``config.model`` (a full jseg config or its ``model`` part).

  ``model.type`` is 'EncoderDecoder' (the default) or 'CascadeEncoderDecoder', whose
  ``decode_head`` is a list of ``num_stages`` heads.
  """
  model_cfg = config.model if 'model' in config else config
  aux = model_cfg.get('auxiliary_head')
  aux = build_head(aux, 'auxiliary_head') if aux else None
  kind = model_cfg.get('type', 'EncoderDecoder')
  if kind == 'CascadeEncoderDecoder':
    heads = model_cfg.decode_head
    if len(heads) != model_cfg.num_stages:
      raise ValueError(f'model.num_stages={model_cfg.num_stages} but {len(heads)} decode heads')
    return CascadeEncoderDecoder(
        backbone=build_backbone(model_cfg.backbone),
        decode_head=tuple(build_head(h, f'decode_head.{i}') for i, h in enumerate(heads)),
        auxiliary_head=aux)
  if kind != 'EncoderDecoder':
    raise ValueError(f'model.type={kind!r}; valid: CascadeEncoderDecoder, EncoderDecoder')
  return EncoderDecoder(
      backbone=build_backbone(model_cfg.backbone),
      decode_head=build_head(model_cfg.decode_head, 'decode_head'), auxiliary_head=aux)


__all__ = ['build_segmentor', 'segmentor_loss', 'total_loss', 'EncoderDecoder',
           'CascadeEncoderDecoder']
