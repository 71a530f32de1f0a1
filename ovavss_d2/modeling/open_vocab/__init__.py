"""Open-vocabulary classification: prompt templates, text classifiers, the learned embedding
classifier, CLIP visual classification and the ensemble functions; the class sources
(``modeling/class_sources``) combine them."""

from .build import build_clip_visual_classifier, build_text_classifier_cache
from .clip_visual import CLIPVisualClassifier
from .embedding_classifier import EmbeddingClassifier, build_embedding_classifier
from .ensemble import (
    embedding_logits,
    fold_objectness,
    geometric_ensemble,
    max_over_synonyms,
    objectness_from_logits,
)
from .templates import TEMPLATE_SETS, VILD_TEMPLATES, get_templates
from .text_classifier import TextClassifierCache

__all__ = [
    "build_clip_visual_classifier",
    "build_embedding_classifier",
    "build_text_classifier_cache",
    "CLIPVisualClassifier",
    "EmbeddingClassifier",
    "TextClassifierCache",
    "TEMPLATE_SETS",
    "VILD_TEMPLATES",
    "get_templates",
    "embedding_logits",
    "fold_objectness",
    "geometric_ensemble",
    "max_over_synonyms",
    "objectness_from_logits",
]
