"""The ``learned`` class source: the trained embedding classifier of the query embeddings.

Shape letters: Q queries, D query-embedding size, E text-embedding size, K classes.

:class:`~ovavss_d2.modeling.class_sources.embedding_classifier.EmbeddingClassifier` compares each
query embedding with the vocabulary's text embeddings and a learned background embedding (logits
``(Q, K+1)``). Its class distribution is the softmax over the K classes after calibrated stacking
(``base_logit_penalty`` subtracted from the logits of training classes); the background column
gives ``p_background``. The module stays the model's ``embedding_classifier`` (trained,
checkpointed); this source only reads it. Keys: ``MODEL.CLASS_SOURCES.LEARNED.*``.

``BASE_LOGIT_PENALTY`` is not the ensemble's ``MODEL.CLASS_SOURCES.BASE_BIAS`` in other words: a
penalty ``c`` inside this softmax adds ``-w(k) * (c * is_base(k) + log Z_c(q))`` to the ensemble's
log-scores, ``Z_c`` the softmax's normaliser; that equals ``BASE_BIAS = c * w`` only when the
source's base and novel weights are one ``w`` (then ``log Z_c`` is the same for every class).
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


def learned_distribution(
    logits: torch.Tensor, is_base: torch.Tensor, base_logit_penalty: float = 0.0
) -> ClassEvidence:
    """Class distribution and background probability from embedding-classifier logits.

    Args:
        logits: ``(Q, K+1)``; the last column is the background embedding.
        is_base: bool ``(K,)``, True for training classes (penalised by ``base_logit_penalty``).
    Returns:
        evidence with ``probs (Q, K)`` (softmax over the K classes) and ``p_background (Q,)``
        (softmax over all K+1).
    """
    logits = logits.float()
    num_classes = logits.shape[-1] - 1
    class_logits = logits[:, :num_classes]
    if base_logit_penalty:
        class_logits = class_logits - base_logit_penalty * is_base.to(logits.device).float()
    return ClassEvidence(
        probs=class_logits.softmax(-1), p_background=logits.softmax(-1)[:, num_classes]
    )


@register_class_source("learned")
class LearnedSource(ClassSource):
    """The trained query-to-text classifier (``MODEL.OVAVSS.CLASS_WEIGHT > 0`` builds it)."""

    @configurable
    def __init__(self, classifier: nn.Module, *, base_logit_penalty: float = 0.0):
        """
        Args:
            classifier: ``(B, Q, D), (K, E) -> (B, Q, K+1)`` logits (the model's
                ``embedding_classifier``).
            base_logit_penalty: subtracted from the logits of base classes before the softmax.
        """
        self.classifier = classifier
        self.base_logit_penalty = float(base_logit_penalty)

    @classmethod
    def from_config(cls, cfg, context: Dict[str, object]) -> Dict[str, object]:
        """Read ``MODEL.CLASS_SOURCES.LEARNED``; the classifier is
        ``context["embedding_classifier"]`` (built by the model)."""
        classifier = context.get("embedding_classifier")
        if classifier is None:
            raise ValueError(
                "class source 'learned' needs the embedding classifier: set "
                "MODEL.OVAVSS.CLASS_WEIGHT > 0 (it is trained with that loss weight)"
            )
        return {
            "classifier": classifier,
            "base_logit_penalty": cfg.MODEL.CLASS_SOURCES.LEARNED.BASE_LOGIT_PENALTY,
        }

    def __call__(self, clip: ClipQueries) -> ClassEvidence:
        class_embeds = clip.class_embeds.to(clip.pred_embeds.device)
        logits = self.classifier(clip.pred_embeds[None], class_embeds)[0]  # (Q, K+1)
        return learned_distribution(logits, clip.is_base, self.base_logit_penalty)
