"""Audio encoders: log-mel patches ``(N, 1, L, M)`` -> embeddings ``(N, C)``.

Register a new encoder with ``@AUDIO_ENCODER_REGISTRY.register()`` and select it with
``MODEL.AUDIO_ENCODER.NAME``. See docs/DESIGN.md ("Model interfaces") and docs/AUDIO_ENCODERS.md.
"""

from .base import AUDIO_ENCODER_REGISTRY, AudioEncoder, build_audio_encoder, encode_audio_frames
from .vggish import VGGish
from .yamnet import YAMNet

__all__ = [
    "AUDIO_ENCODER_REGISTRY",
    "AudioEncoder",
    "build_audio_encoder",
    "encode_audio_frames",
    "VGGish",
    "YAMNet",
]
