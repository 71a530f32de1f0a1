"""The ``learned`` class source: the trained embedding classifier of the query embeddings.

Shape letters: Q queries, D query-embedding size, E text-embedding size, K classes.

:class:`~ovavss_d2.modeling.class_sources.embedding_classifier.EmbeddingClassifier` compares each
query embedding with the vocabulary's text embeddings and a learned background embedding (logits
``(Q, K+1)``). Its class distribution is the softmax over the K classes; the background column
gives ``p_background``. The module stays the model's ``embedding_classifier`` (trained,
checkpointed, keys ``MODEL.CLASS_SOURCES.LEARNED.*``); this source only reads it. Calibration
against base classes is the ensemble's ``MODEL.CLASS_SOURCES.BASE_BIAS``: a penalty ``c`` on the
classifier's base logits before its softmax equals ``BASE_BIAS = c * w`` with ``w`` this source's
base weight (the softmax's normaliser is the same for every class of a query and cancels).
"""

from typing import Dict

import torch
from detectron2.config import configurable
from torch import nn

from .base import ClassEvidence, ClassSource, ClipQueries, register_class_source
from .embedding_classifier import EmbeddingClassifier, build_embedding_classifier

__all__ = [
    "EmbeddingClassifier",
    "LearnedSource",
    "build_embedding_classifier",
    "learned_distribution",
]


def learned_distribution(logits: torch.Tensor) -> ClassEvidence:
    """Class distribution and background probability from embedding-classifier logits.

    Args:
        logits: ``(Q, K+1)``; the last column is the background embedding.
    Returns:
        evidence with ``probs (Q, K)`` (softmax over the K classes) and ``p_background (Q,)``
        (softmax over all K+1).
    """
    logits = logits.float()
    num_classes = logits.shape[-1] - 1
    return ClassEvidence(
        probs=logits[:, :num_classes].softmax(-1), p_background=logits.softmax(-1)[:, num_classes]
    )


@register_class_source("learned")
class LearnedSource(ClassSource):
    """The trained query-to-text classifier (``MODEL.OVAVSS.CLASS_WEIGHT > 0`` builds it)."""

    @configurable
    def __init__(self, classifier: nn.Module):
        """
        Args:
            classifier: ``(B, Q, D), (K, E) -> (B, Q, K+1)`` logits (the model's
                ``embedding_classifier``).
        """
        self.classifier = classifier

    @classmethod
    def from_config(cls, cfg, context: Dict[str, object]) -> Dict[str, object]:
        """The classifier is ``context["embedding_classifier"]`` (built by the model)."""
        classifier = context.get("embedding_classifier")
        if classifier is None:
            raise ValueError(
                "class source 'learned' needs the embedding classifier: set "
                "MODEL.OVAVSS.CLASS_WEIGHT > 0 (it is trained with that loss weight)"
            )
        return {"classifier": classifier}

    def __call__(self, clip: ClipQueries) -> ClassEvidence:
        class_embeds = clip.class_embeds.to(clip.pred_embeds.device)
        logits = self.classifier(clip.pred_embeds[None], class_embeds)[0]  # (Q, K+1)
        return learned_distribution(logits)
