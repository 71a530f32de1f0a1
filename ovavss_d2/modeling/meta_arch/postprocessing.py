"""Inference post-processing of OV-AVSS: instances from query scores, semantic maps per frame.

Shape letters: Q queries, K classes of the vocabulary, H x W a frame's size.
"""

from typing import Tuple

import torch
from detectron2.structures import Instances

__all__ = ["channel_max", "paint_instances", "select_instances", "semantic_from_masks"]


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
    num_queries, num_classes = scores.shape
    sem = masks.new_empty((num_classes + 1, *masks.shape[1:]))
    evidence = sem[1:]  # (K, H, W), written in place: s_k = sum_q score(q, k) * m_q
    torch.mm(scores.t(), masks.reshape(num_queries, -1), out=evidence.view(num_classes, -1))
    best = channel_max(evidence).clamp_(min=1e-12)
    p_fg = scores.sum(-1)  # (Q,): p_cls sums to 1 over the K classes
    fg = masks[0] * p_fg[0]  # (H, W): max_q p_fg(q) * m_q, one query at a time
    for q in range(1, num_queries):
        torch.maximum(fg, masks[q] * p_fg[q], out=fg)
    fg.clamp_(0, 1)
    torch.sub(1, fg, out=sem[0])
    evidence.mul_(fg).div_(best)
    return sem


def paint_instances(instances: Instances, num_classes: int) -> torch.Tensor:
    """Reference semantic map: each kept instance paints its class with its score; higher scores
    win overlaps; unpainted pixels are background. Returns ``(K+1, H0, W0)``."""
    h, w = instances.image_size
    masks = instances.pred_masks
    sem = torch.zeros(num_classes + 1, h, w, device=masks.device)
    painted = set()
    for mask, cls, score in zip(masks, instances.pred_classes, instances.scores):
        channel = sem[int(cls) + 1]
        channel.copy_(torch.where(mask, torch.maximum(channel, score), channel))
        painted.add(int(cls) + 1)
    top = sem[0].clone()  # zeros; unpainted channels are zero too
    for c in sorted(painted):
        torch.maximum(top, sem[c], out=top)
    sem[0] = (top == 0).float()
    return sem


def channel_max(values: torch.Tensor) -> torch.Tensor:
    """``(C, H, W) -> (H, W)`` maximum over the channels, equal to ``amax(0)``: C element-wise
    passes, as a reduction over the outermost dimension of a contiguous map is slow on a CPU."""
    top = values[0].clone()
    for c in range(1, len(values)):
        torch.maximum(top, values[c], out=top)
    return top
