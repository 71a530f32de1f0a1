"""Pixel decoders: backbone features + audio -> mask features and multi-scale features.

Register a new decoder with ``@PIXEL_DECODER_REGISTRY.register()`` and select it with
``MODEL.PIXEL_DECODER.NAME``. See docs/DESIGN.md ("Model interfaces").
"""

from typing import Dict

from detectron2.layers import ShapeSpec
from detectron2.utils.registry import Registry
from torch import nn

from .av_fusion import AudioVisualFusion
from .av_msdeform_pixel_decoder import AVMSDeformAttnPixelDecoder
from .msdeform_attn import MSDeformAttn

PIXEL_DECODER_REGISTRY = Registry("PIXEL_DECODER")
PIXEL_DECODER_REGISTRY.__doc__ = """
Registry for pixel decoders. The registered object is called as ``obj(cfg, input_shape,
audio_dim)`` (``@configurable`` classes accept that) and must provide
``forward_features(features, audio, num_frames)`` mapping ``features[k]: (B*T, C_k, H_k, W_k)``
(frames of a clip contiguous, index ``b*T + t``) and ``audio: (B, T, C_a)`` to
``(mask_features (B*T, mask_dim, H/4, W/4), [3 maps (B*T, conv_dim, H_i, W_i), stride 32 -> 8])``,
and the attributes ``conv_dim`` and ``mask_dim``.
"""
PIXEL_DECODER_REGISTRY.register(AVMSDeformAttnPixelDecoder)


def build_pixel_decoder(cfg, input_shape: Dict[str, ShapeSpec], audio_dim: int) -> nn.Module:
    """Build the pixel decoder named by ``cfg.MODEL.PIXEL_DECODER.NAME``.

    Args:
        cfg: a config with the ovavss_d2 keys.
        input_shape: backbone output shapes, name -> ShapeSpec.
        audio_dim: C_a, channels of the audio embeddings.

    Returns:
        the decoder; it has ``forward_features``, ``conv_dim`` and ``mask_dim``.
    """
    name = cfg.MODEL.PIXEL_DECODER.NAME
    model = PIXEL_DECODER_REGISTRY.get(name)(cfg, input_shape, audio_dim)
    if not callable(getattr(model, "forward_features", None)):
        raise ValueError(
            f"pixel decoder {name} has no forward_features(features, audio, num_frames)"
        )
    for attr in ("conv_dim", "mask_dim"):
        if not isinstance(getattr(model, attr, None), int):
            raise ValueError(f"pixel decoder {name} has no integer attribute {attr!r}")
    return model


__all__ = [
    "PIXEL_DECODER_REGISTRY",
    "build_pixel_decoder",
    "AVMSDeformAttnPixelDecoder",
    "AudioVisualFusion",
    "MSDeformAttn",
]
