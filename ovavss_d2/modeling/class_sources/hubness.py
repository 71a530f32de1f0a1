"""Mean-centring of a tagger's text space against hubness.

Shape letters: J label names of a tagger, K classes of the vocabulary, E text-embedding size.

A tag-based source names a query by the cosine of a weighted mean of label-name embeddings
``u`` with each class's embedding. All sentence embeddings share a common direction, so a class
whose embedding lies closer to it (a "hub") wins for tags that say little, and a few names attract
everything. Centring both sides on the mean of the tagger's label-name embeddings ``mu`` (a
property of the tagger, not of the data or the vocabulary) removes that direction:
``cos(normalise(u - mu), normalise(text(class_k) - mu))``.
"""

from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["CENTER_MODES", "centered", "label_mean"]

CENTER_MODES = ("", "labels")


def label_mean(label_embeds: torch.Tensor, mode: str) -> Optional[torch.Tensor]:
    """``(E,)`` mean of the label embeddings ``(J, E)`` for ``mode`` "labels", None for ""."""
    if mode not in CENTER_MODES:
        raise ValueError(f"CENTER must be one of {CENTER_MODES}, got {mode!r}")
    return label_embeds.float().mean(0) if mode == "labels" else None


def centered(embeds: torch.Tensor, mean: Optional[torch.Tensor]) -> torch.Tensor:
    """``(..., E)`` unit vectors ``normalise(embeds - mean)``; ``embeds`` unchanged when ``mean``
    is None. Zero rows (no evidence) stay 0."""
    if mean is None:
        return embeds
    empty = embeds.abs().sum(-1, keepdim=True) == 0
    out = F.normalize(embeds.float() - mean.to(embeds.device), dim=-1)
    return out.masked_fill(empty, 0.0)
