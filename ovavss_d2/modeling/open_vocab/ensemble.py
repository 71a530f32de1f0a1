"""Pure functions of open-vocabulary classification: CLIP logits, max over synonyms, the base/novel
geometric ensemble and the sounding-objectness factor (mask pooling: ``ovavss_d2.modeling.crops``).

Shapes: ``B`` images (frames), ``Q`` queries, ``K`` classes, ``S`` synonyms per class, ``C``
feature channels, ``E`` embedding size, ``H x W`` feature size. ``...`` is any leading shape.
"""

from typing import Optional

import torch
import torch.nn.functional as F


def embedding_logits(
    embeds: torch.Tensor, text_embeds: torch.Tensor, logit_scale: float = 100.0
) -> torch.Tensor:
    """Scaled cosine similarity of embeddings with class (or synonym) text embeddings.

    Args:
        embeds: ``(..., E)`` visual embeddings (normalised here).
        text_embeds: ``(K, E)`` or ``(K, S, E)`` text embeddings (normalised here; zero rows
            stay 0).
        logit_scale: temperature (the reference: 100).

    Returns:
        ``(..., K)`` or ``(..., K, S)`` logits.
    """
    embeds = F.normalize(embeds.float(), dim=-1)
    text = F.normalize(text_embeds.float(), dim=-1)
    if text.dim() == 2:
        return logit_scale * embeds @ text.t()  # (..., E) x (E, K) -> (..., K)
    return logit_scale * torch.einsum("...e,kse->...ks", embeds, text)


def max_over_synonyms(logits: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Class logit = the best of its synonyms.

    Args:
        logits: ``(..., K, S)`` per-synonym logits.
        valid: bool ``(K, S)``, False at padding synonyms (every class needs one True).

    Returns:
        ``(..., K)``.
    """
    if not bool(valid.any(dim=-1).all()):
        raise ValueError("Every class needs at least one valid synonym")
    return logits.masked_fill(~valid, float("-inf")).amax(dim=-1)


def geometric_ensemble(
    p_learned: torch.Tensor,
    p_clip: torch.Tensor,
    is_novel: torch.Tensor,
    alpha: float = 0.4,
    beta: float = 0.8,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Geometric mean of learned and CLIP class probabilities, with separate weights for base and
    novel classes (FC-CLIP): ``p = p_learned ** (1 - a) * p_clip ** a``, ``a = alpha`` for base and
    ``beta`` for novel classes. ``a = 0`` keeps the learned score, ``a = 1`` the CLIP score.

    Args:
        p_learned: ``(..., K)`` probabilities from the trained classifier.
        p_clip: ``(..., K)`` probabilities from CLIP.
        is_novel: bool ``(K,)``, True for classes unseen in training.
        alpha, beta: exponents in [0, 1] of base / novel classes.
        eps: floor on the probabilities (avoids 0 ** 0 and log(0) downstream).

    Returns:
        ``(..., K)`` ensembled scores (not renormalised).
    """
    if not (0.0 <= alpha <= 1.0 and 0.0 <= beta <= 1.0):
        raise ValueError(f"alpha and beta must lie in [0, 1], got {alpha}, {beta}")
    is_novel = is_novel.to(device=p_clip.device, dtype=torch.bool)
    weight = torch.full(is_novel.shape, alpha, dtype=p_clip.dtype, device=p_clip.device)
    weight[is_novel] = beta  # (K,)
    return p_learned.clamp(min=eps) ** (1 - weight) * p_clip.clamp(min=eps) ** weight


def objectness_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Probability of "sounding object" from the 2-way sound head.

    Args:
        logits: ``(..., 2)``; index 0 = sounding object, index 1 = no object (Mask2Former's
            convention: the last class is "no object").

    Returns:
        ``(...,)`` probabilities.
    """
    return logits.float().softmax(dim=-1)[..., 0]


def fold_objectness(
    class_scores: torch.Tensor, objectness: Optional[torch.Tensor], power: float = 1.0
) -> torch.Tensor:
    """Scale class scores by how likely the query is a sounding object.

    Args:
        class_scores: ``(..., K)`` per-class scores (probabilities).
        objectness: ``(...,)`` sounding-object probabilities, or None (scores returned unchanged).
        power: exponent on the objectness (1: plain product).

    Returns:
        ``(..., K)``: ``class_scores * objectness ** power``.
    """
    if objectness is None:
        return class_scores
    return class_scores * objectness.unsqueeze(-1).to(class_scores.dtype) ** power
