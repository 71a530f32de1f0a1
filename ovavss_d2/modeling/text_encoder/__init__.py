"""Text encoders: class prompts -> L2-normalised embeddings ``(N, E)``.

Select one with ``MODEL.TEXT_ENCODER.NAME``; see docs/DESIGN.md ("Model interfaces").
"""

from .base import TEXT_ENCODER_REGISTRY, TextEncoder, build_text_encoder
from .clip_text import CLIPTextEncoder
from .minilm import MiniLMTextEncoder
from .templates import TEMPLATE_SETS, VILD_TEMPLATES, get_templates
from .text_classifier import TextClassifierCache, build_text_classifier_cache

__all__ = [
    "TEXT_ENCODER_REGISTRY",
    "TextEncoder",
    "build_text_encoder",
    "CLIPTextEncoder",
    "MiniLMTextEncoder",
    "TEMPLATE_SETS",
    "TextClassifierCache",
    "VILD_TEMPLATES",
    "build_text_classifier_cache",
    "get_templates",
]
