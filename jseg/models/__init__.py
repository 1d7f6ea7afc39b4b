"""jseg models: ``build_segmentor(config)`` returns a flax.linen Module."""
from jseg.models.backbones import build_backbone
from jseg.models.heads import build_head
from jseg.models.losses import segmentor_loss, total_loss
from jseg.models.segmentor import EncoderDecoder


def build_segmentor(config) -> EncoderDecoder:
  """Segmentor of ``config.model`` (a full jseg config or its ``model`` part)."""
  model_cfg = config.model if 'model' in config else config
  aux = model_cfg.get('auxiliary_head')
  return EncoderDecoder(
      backbone=build_backbone(model_cfg.backbone),
      decode_head=build_head(model_cfg.decode_head, 'decode_head'),
      auxiliary_head=build_head(aux, 'auxiliary_head') if aux else None)


__all__ = ['build_segmentor', 'segmentor_loss', 'total_loss', 'EncoderDecoder']
