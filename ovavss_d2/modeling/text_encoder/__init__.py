"""Text encoders: class prompts -> L2-normalised embeddings ``(N, E)``.

Select one with ``MODEL.TEXT_ENCODER.NAME``; see docs/DESIGN.md ("Model interfaces").
"""

from .base import TEXT_ENCODER_REGISTRY, TextEncoder, build_text_encoder
from .clip_text import CLIPTextEncoder
from .minilm import MiniLMTextEncoder

__all__ = [
    "TEXT_ENCODER_REGISTRY",
    "TextEncoder",
    "build_text_encoder",
    "CLIPTextEncoder",
    "MiniLMTextEncoder",
]
