"""Open-vocabulary classification: prompt templates, text classifiers, CLIP visual classification
and the ensemble functions. Inference-time pieces; the meta-architecture combines them."""

from .build import build_clip_visual_classifier, build_text_classifier_cache
from .clip_visual import CLIPVisualClassifier
from .ensemble import (
    embedding_logits,
    fold_objectness,
    geometric_ensemble,
    mask_pooling,
    max_over_synonyms,
    objectness_from_logits,
)
from .templates import TEMPLATE_SETS, VILD_TEMPLATES, get_templates
from .text_classifier import TextClassifierCache

__all__ = [
    "build_clip_visual_classifier",
    "build_text_classifier_cache",
    "CLIPVisualClassifier",
    "TextClassifierCache",
    "TEMPLATE_SETS",
    "VILD_TEMPLATES",
    "get_templates",
    "embedding_logits",
    "fold_objectness",
    "geometric_ensemble",
    "mask_pooling",
    "max_over_synonyms",
    "objectness_from_logits",
]
