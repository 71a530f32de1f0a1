"""Class-evidence sources (``CLASS_SOURCE_REGISTRY``) and their ensemble; see base.py."""

from .base import CLASS_SOURCE_REGISTRY, ClassEvidence, ClassSource, ClipQueries
from .ensemble import SourceWeights, combine_evidence, describe_weights, foreground_probability

__all__ = [
    "CLASS_SOURCE_REGISTRY",
    "ClassEvidence",
    "ClassSource",
    "ClipQueries",
    "SourceWeights",
    "combine_evidence",
    "describe_weights",
    "foreground_probability",
]
