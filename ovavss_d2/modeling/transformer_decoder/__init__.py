"""Transformer decoders: queries + multi-scale features + audio -> per-clip mask predictions.

Register a new decoder with ``@TRANSFORMER_DECODER_REGISTRY.register()`` and select it with
``MODEL.TRANSFORMER_DECODER.NAME``. See docs/DESIGN.md ("Model interfaces").
"""

from detectron2.utils.registry import Registry
from torch import nn

from .audio_masked_transformer_decoder import AudioMaskedTransformerDecoder
from .position_encoding import PositionEmbeddingSine, TemporalEmbedding, sine_encoding_1d

TRANSFORMER_DECODER_REGISTRY = Registry("TRANSFORMER_DECODER")
TRANSFORMER_DECODER_REGISTRY.__doc__ = """
Registry for transformer decoders. The registered object is called as ``obj(cfg, in_channels,
mask_dim, audio_dim)`` (``@configurable`` classes accept that) and its
``forward(multi_scale_features, mask_features, audio, num_frames)`` maps 3 maps
``(B*T, in_channels, H_i, W_i)`` (stride 32 first), ``mask_features (B*T, mask_dim, H/4, W/4)``
and ``audio (B, T, C_a)`` to ``{"pred_objectness": (B, Q, 2), "pred_embeds": (B, Q, D),
"pred_masks": (B, Q, T, H/4, W/4), "aux_outputs": [dicts with the same keys]}``, and with
``MODEL.OVAVSS.PER_FRAME_OBJECTNESS`` also ``"pred_frame_objectness": (B, Q, T)`` logits (query q
sounds in frame t). Clips of a batch never attend to each other.
"""
TRANSFORMER_DECODER_REGISTRY.register(AudioMaskedTransformerDecoder)


def build_transformer_decoder(cfg, in_channels: int, mask_dim: int, audio_dim: int) -> nn.Module:
    """Build the transformer decoder named by ``cfg.MODEL.TRANSFORMER_DECODER.NAME``.

    Args:
        cfg: a config with the ovavss_d2 keys.
        in_channels: channels of the pixel decoder's multi-scale features (its ``conv_dim``).
        mask_dim: channels of the mask features (the pixel decoder's ``mask_dim``).
        audio_dim: C_a, channels of the audio embeddings.

    Returns:
        the decoder module.
    """
    name = cfg.MODEL.TRANSFORMER_DECODER.NAME
    model = TRANSFORMER_DECODER_REGISTRY.get(name)(cfg, in_channels, mask_dim, audio_dim)
    if not isinstance(model, nn.Module):
        raise ValueError(f"transformer decoder {name} is not an nn.Module")
    return model


__all__ = [
    "TRANSFORMER_DECODER_REGISTRY",
    "build_transformer_decoder",
    "AudioMaskedTransformerDecoder",
    "PositionEmbeddingSine",
    "TemporalEmbedding",
    "sine_encoding_1d",
]
