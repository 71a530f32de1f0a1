"""Combining class-evidence sources: a weighted geometric ensemble with separate weights for
base and novel classes, and the foreground probability of each query; with the pure functions the
sources share (objectness from logits, scaled cosine logits, max over synonyms; mask pooling lives
in ``ovavss_d2.modeling.crops``).

Shape letters: Q queries, T frames, K classes, S synonyms per class, B images, C feature channels,
E embedding size, H x W feature size; ``...`` any leading shape.

``log s(q, k) = sum_s w_s(k) * log p_s(q, k)``, ``w_s(k)`` the source's base weight for training
classes and its novel weight for the others; ``p_cls = softmax_k(log s)``. Where a source cannot
speak about class k (``ClassEvidence.speaks``) its factor is uninformative, ``1 / K``. With two
sources of weights ``1 - a`` and ``a`` this is FC-CLIP's base / novel geometric ensemble.
"""

from typing import Dict, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F

from .base import ClassEvidence

__all__ = [
    "SourceWeights",
    "combine_evidence",
    "describe_weights",
    "embedding_logits",
    "foreground_probability",
    "max_over_synonyms",
    "objectness_from_logits",
]

EPS = 1e-8


class SourceWeights(Tuple[float, float]):
    """``(base, novel)`` exponents of one source in the ensemble."""

    def __new__(cls, base: float, novel: float) -> "SourceWeights":
        if base < 0 or novel < 0:
            raise ValueError(f"source weights must be >= 0, got base={base}, novel={novel}")
        return super().__new__(cls, (float(base), float(novel)))

    @property
    def base(self) -> float:
        return self[0]

    @property
    def novel(self) -> float:
        return self[1]


def _per_class_weight(weights: SourceWeights, is_base: torch.Tensor) -> torch.Tensor:
    """``(K,)`` exponent of a source: its base weight on base classes, novel weight elsewhere."""
    base = torch.full(is_base.shape, weights.base, dtype=torch.float32, device=is_base.device)
    return torch.where(is_base, base, torch.full_like(base, weights.novel))


def _log_factor(evidence: ClassEvidence, num_classes: int) -> torch.Tensor:
    """``(Q, [T,] K)`` log-probabilities of a source, ``log(1 / K)`` where it cannot speak."""
    log_p = evidence.probs.float().clamp(min=EPS).log()
    if log_p.shape[-1] != num_classes:
        raise ValueError(
            f"class source gave {log_p.shape[-1]} classes, the vocabulary has {num_classes}"
        )
    if evidence.speaks is not None:
        silent = ~evidence.speaks.to(device=log_p.device, dtype=torch.bool)
        log_p = log_p.masked_fill(silent, -float(torch.log(torch.tensor(float(num_classes)))))
    return log_p


def combine_evidence(
    evidence: Mapping[str, ClassEvidence],
    weights: Mapping[str, SourceWeights],
    is_base: torch.Tensor,
    base_bias: float = 0.0,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Weighted geometric ensemble of the sources' class distributions.

    Args:
        evidence: source name -> its evidence; ``probs`` ``(Q, K)`` or ``(Q, T, K)``.
        weights: source name -> its ``(base, novel)`` exponents (every evidence needs one).
        is_base: bool ``(K,)``.
        base_bias: subtracted from the log-scores of base classes: calibrated stacking of the
            ensemble, against the bias of a model towards the classes it was trained on.
    Returns:
        ``(log_scores, p_cls)``: the unnormalised ``sum_s w_s * log p_s - base_bias * is_base``
        and its softmax over K,
        both ``(Q, K)``, or ``(Q, T, K)`` when any source gives per-frame evidence.
    """
    if not evidence:
        raise ValueError("combine_evidence needs at least one class source")
    missing = sorted(set(evidence) - set(weights))
    if missing:
        raise KeyError(f"no ensemble weights for class sources {missing}")
    num_classes = int(is_base.numel())
    is_base = is_base.bool()
    terms = []
    for name, ev in evidence.items():
        log_p = _log_factor(ev, num_classes)
        terms.append(_per_class_weight(weights[name], is_base.to(log_p.device)) * log_p)
    per_frame = [t for t in terms if t.dim() == 3]
    if per_frame:
        num_frames = per_frame[0].shape[1]
        terms = [t if t.dim() == 3 else t[:, None].expand(-1, num_frames, -1) for t in terms]
    log_scores = torch.stack(terms).sum(0)
    if base_bias:
        log_scores = log_scores - base_bias * is_base.to(log_scores.device).float()
    return log_scores, log_scores.softmax(-1)


def foreground_probability(
    objectness: Optional[torch.Tensor],
    evidence: Mapping[str, ClassEvidence],
    objectness_exponent: float,
    background_exponent: float,
    num_queries: int,
) -> torch.Tensor:
    """``(Q,)`` how much each query counts: ``p_obj ** objectness_exponent`` times
    ``(1 - p_bg) ** background_exponent`` for each source that models background.

    Args:
        objectness: ``(Q,)`` sounding-object probabilities, or None (factor 1).
    """
    p_fg = torch.ones(num_queries)
    if objectness is not None and objectness_exponent:
        p_fg = p_fg.to(objectness.device) * objectness.float() ** objectness_exponent
    if background_exponent:
        for ev in evidence.values():
            if ev.p_background is not None:
                p_bg = ev.p_background.float()
                p_fg = p_fg.to(p_bg.device) * (1 - p_bg).clamp(min=0) ** background_exponent
    return p_fg


def describe_weights(weights: Mapping[str, SourceWeights]) -> Dict[str, Dict[str, float]]:
    """``{name: {"base": w, "novel": w}}`` for logs and result files."""
    return {name: {"base": w.base, "novel": w.novel} for name, w in weights.items()}


def objectness_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Probability of "sounding object" from the 2-way sound head.

    Args:
        logits: ``(..., 2)``; index 0 = sounding object, index 1 = no object (Mask2Former's
            convention: the last class is "no object").

    Returns:
        ``(...,)`` probabilities.
    """
    return logits.float().softmax(dim=-1)[..., 0]


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
