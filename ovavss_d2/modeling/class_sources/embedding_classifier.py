"""Learned open-vocabulary classifier: query embeddings against text embeddings plus a background.

Shape letters: B clips, Q queries, D query-embedding size, E text-embedding size, K classes of the
vocabulary in use.

Each query embedding is projected into the text-embedding space, L2-normalised and compared by
cosine similarity with the K class text embeddings and with one learned background ("no object")
embedding; a learned temperature scales the similarities (CLIP-style ``logit_scale``, clamped).
The ``learned`` class source (learned.py) reads it at inference; the module itself is the
model's ``embedding_classifier`` (trained, checkpointed). Keys: ``MODEL.CLASS_SOURCES.LEARNED.*``.
Trained with cross-entropy over the base classes; at test time any vocabulary can be plugged in,
which is what makes novel classes recognisable without a CLIP image tower.
"""

import math
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from torch import nn

__all__ = ["EmbeddingClassifier", "build_embedding_classifier"]


class EmbeddingClassifier(nn.Module):
    """Cosine classifier against a text vocabulary with a learned background embedding.

    Output logits ``(B, Q, K+1)``: index k < K is class k of the given vocabulary, index K is the
    background / no-object embedding.
    """

    @configurable
    def __init__(
        self,
        *,
        in_dim: int,
        embed_dim: int,
        hidden_dim: int = 0,
        temperature: float = 0.07,
        learn_temperature: bool = True,
        max_logit_scale: float = 100.0,
    ):
        """
        Args:
            in_dim: D, size of the decoder's query embeddings.
            embed_dim: E, size of the text embeddings.
            hidden_dim: hidden size of a 2-layer projection MLP; 0 for a single linear layer.
            temperature: initial softmax temperature (logits = cosine / temperature).
            learn_temperature: learn the temperature (as ``log(1 / temperature)``).
            max_logit_scale: upper bound of ``1 / temperature`` (CLIP uses 100).
        """
        super().__init__()
        if hidden_dim > 0:
            self.proj = nn.Sequential(
                nn.Linear(in_dim, hidden_dim),
                nn.ReLU(inplace=True),
                nn.Linear(hidden_dim, embed_dim),
            )
        else:
            self.proj = nn.Linear(in_dim, embed_dim)
        self.bg_embed = nn.Parameter(F.normalize(torch.randn(embed_dim), dim=0))
        scale = torch.tensor(math.log(1.0 / temperature))
        if learn_temperature:
            self.logit_scale = nn.Parameter(scale)
        else:
            self.register_buffer("logit_scale", scale)
        self.max_logit_scale = max_logit_scale
        self.embed_dim = embed_dim

    @classmethod
    def from_config(cls, cfg, embed_dim: int) -> Dict[str, object]:
        """``MODEL.CLASS_SOURCES.LEARNED.*`` for query embeddings of
        ``MODEL.TRANSFORMER_DECODER.EMBED_DIM`` and text embeddings of size ``embed_dim``."""
        c = cfg.MODEL.CLASS_SOURCES.LEARNED
        return {
            "in_dim": cfg.MODEL.TRANSFORMER_DECODER.EMBED_DIM,
            "embed_dim": embed_dim,
            "hidden_dim": c.HIDDEN_DIM,
            "temperature": c.TEMPERATURE,
            "learn_temperature": c.LEARN_TEMPERATURE,
        }

    def forward(self, query_embeds: torch.Tensor, class_embeds: torch.Tensor) -> torch.Tensor:
        """
        Args:
            query_embeds: ``(B, Q, D)`` decoder query embeddings.
            class_embeds: ``(K, E)`` L2-normalised text embeddings of the vocabulary.
        Returns:
            logits ``(B, Q, K+1)``; the last column is the background.
        """
        if class_embeds.shape[-1] != self.embed_dim:
            raise ValueError(
                f"text embeddings have size {class_embeds.shape[-1]}, the classifier was built for "
                f"{self.embed_dim} (MODEL.TEXT_ENCODER changed?)"
            )
        x = F.normalize(self.proj(query_embeds), dim=-1)  # (B, Q, E)
        weights = torch.cat(
            [class_embeds.to(x), F.normalize(self.bg_embed, dim=0)[None].to(x)], dim=0
        )  # (K+1, E)
        scale = self.logit_scale.exp().clamp(max=self.max_logit_scale)
        return scale * torch.einsum("bqe,ke->bqk", x, weights)

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, max_logit_scale={self.max_logit_scale}"


def build_embedding_classifier(cfg, embed_dim: int) -> Optional[EmbeddingClassifier]:
    """The classifier of ``MODEL.CLASS_SOURCES.LEARNED.*`` for E = ``embed_dim`` text embeddings,
    or None when ``MODEL.OVAVSS.CLASS_WEIGHT`` is 0 (no such head is trained)."""
    if cfg.MODEL.OVAVSS.CLASS_WEIGHT <= 0:
        return None
    return EmbeddingClassifier(cfg, embed_dim)
