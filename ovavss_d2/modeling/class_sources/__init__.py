"""Class evidence: every source (``CLASS_SOURCE_REGISTRY``: learned, clip_visual, audio_tags,
image_tags) and their one ensemble; see base.py. The vocabulary's text side (templates, text
classifiers) lives in ``modeling/text_encoder``."""

from .audio_tags import AudioTagsSource, audio_label_names
from .base import (
    CLASS_SOURCE_REGISTRY,
    ClassEvidence,
    ClassSource,
    ClipQueries,
    register_class_source,
)
from .build import build_class_sources, configured_weights, registered_sources
from .clip_visual import CLIPVisualClassifier, ClipVisualSource
from .embedding_classifier import EmbeddingClassifier, build_embedding_classifier
from .ensemble import (
    SourceWeights,
    combine_evidence,
    describe_weights,
    embedding_logits,
    foreground_probability,
    max_over_synonyms,
    objectness_from_logits,
)
from .image_tags import ImageTagsSource
from .learned import LearnedSource, learned_distribution

__all__ = [
    "CLASS_SOURCE_REGISTRY",
    "AudioTagsSource",
    "CLIPVisualClassifier",
    "EmbeddingClassifier",
    "ClassEvidence",
    "ClassSource",
    "ClipQueries",
    "ClipVisualSource",
    "ImageTagsSource",
    "LearnedSource",
    "SourceWeights",
    "audio_label_names",
    "build_class_sources",
    "build_embedding_classifier",
    "configured_weights",
    "combine_evidence",
    "describe_weights",
    "embedding_logits",
    "foreground_probability",
    "learned_distribution",
    "max_over_synonyms",
    "objectness_from_logits",
    "register_class_source",
    "registered_sources",
]
