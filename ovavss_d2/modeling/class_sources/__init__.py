"""Class-evidence sources (``CLASS_SOURCE_REGISTRY``) and their ensemble; see base.py."""

from .audio_tags import AudioTagsSource, audio_label_names
from .base import (
    CLASS_SOURCE_REGISTRY,
    ClassEvidence,
    ClassSource,
    ClipQueries,
    register_class_source,
)
from .build import build_class_sources, legacy_sources, registered_sources
from .clip_visual import ClipVisualSource
from .ensemble import SourceWeights, combine_evidence, describe_weights, foreground_probability
from .image_tags import ImageTagsSource
from .learned import LearnedSource, learned_distribution

__all__ = [
    "CLASS_SOURCE_REGISTRY",
    "AudioTagsSource",
    "ClassEvidence",
    "ClassSource",
    "ClipQueries",
    "ClipVisualSource",
    "ImageTagsSource",
    "LearnedSource",
    "SourceWeights",
    "audio_label_names",
    "build_class_sources",
    "combine_evidence",
    "describe_weights",
    "foreground_probability",
    "learned_distribution",
    "legacy_sources",
    "register_class_source",
    "registered_sources",
]
