"""Inference post-processing of OV-AVSS: instances from query scores, semantic maps per frame.

Shape letters: Q queries, K classes of the vocabulary, H x W a frame's size.
"""

from typing import Tuple

import torch
from detectron2.structures import Instances

__all__ = ["paint_instances", "select_instances", "semantic_from_masks"]


def select_instances(
    scores: torch.Tensor, top_k: int, score_threshold: float
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``top_k`` best (query, class) pairs of a clip scoring above ``score_threshold``.

    Args:
        scores: ``(Q, K)`` query class scores.
    Returns:
        ``(queries, classes, scores)``, each ``(n,)``, best first.
    """
    num_classes = scores.shape[1]
    flat = scores.flatten()
    top = flat.topk(min(top_k, flat.numel()))
    keep = top.values > score_threshold
    index = top.indices[keep]
    return index // num_classes, index % num_classes, top.values[keep]


def semantic_from_masks(scores: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Semantic map of one frame from query scores and mask probabilities.

    Whether a pixel shows a sounding object and which class it is are decided apart, so that a
    spread-out class distribution (novel classes, ensembles) does not turn objects into
    background: ``fg(x) = max_q p_fg(q) * m_q(x)``; class evidence ``s_k(x) = sum_q score(q, k) *
    m_q(x)`` (Mask2Former's semantic inference); output channel 0 is ``1 - fg`` and channel k is
    ``fg * s_k / max_k' s_k'``, so the argmax is the best class where ``fg > 0.5`` and background
    elsewhere.

    Args:
        scores: ``(Q, K)`` query class scores ``p_fg(q) * p_cls(q, k)``.
        masks: ``(Q, H, W)`` mask probabilities.
    Returns:
        ``(K+1, H, W)``.
    """
    evidence = torch.einsum("qk,qhw->khw", scores, masks)  # (K, H, W)
    p_fg = scores.sum(-1)  # (Q,): p_cls sums to 1 over the K classes
    fg = (p_fg[:, None, None] * masks).amax(0).clamp(0, 1)  # (H, W)
    best = evidence.amax(0, keepdim=True).clamp(min=1e-12)
    return torch.cat([(1 - fg)[None], fg[None] * evidence / best])


def paint_instances(instances: Instances, num_classes: int) -> torch.Tensor:
    """Reference semantic map: each kept instance paints its class with its score; higher scores
    win overlaps; unpainted pixels are background. Returns ``(K+1, H0, W0)``."""
    h, w = instances.image_size
    masks = instances.pred_masks
    sem = torch.zeros(num_classes + 1, h, w, device=masks.device)
    for mask, cls, score in zip(masks, instances.pred_classes, instances.scores):
        channel = sem[int(cls) + 1]
        channel[mask] = torch.maximum(channel[mask], score)
    sem[0] = (sem[1:].max(0)[0] == 0).float()
    return sem
