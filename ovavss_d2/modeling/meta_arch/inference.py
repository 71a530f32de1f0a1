"""Inference post-processing of OV-AVSS for one clip: query masks resized to the frames, instances
and semantic maps per frame from the query class scores.

Shape letters: Q queries, T frames, K classes, h x w mask size, H x W resized (unpadded) frame size,
Hp x Wp padded input size, H0 x W0 original frame size.
"""

from functools import lru_cache
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from detectron2.structures import Instances

from ..class_sources import ClipQueries
from .postprocessing import paint_instances, select_instances, semantic_from_masks

__all__ = [
    "clip_level_scores",
    "clip_queries",
    "clip_results",
    "frame_mask_logits",
    "frame_mask_probs",
    "resized_mask_probs",
]

Size = Tuple[int, int]


def frame_mask_logits(
    mask_logits: torch.Tensor, t: int, padded_size: Size, image_size: Size, size: Size
) -> torch.Tensor:
    """Frame ``t`` of ``(Q, T, h, w)`` mask logits -> the padded input size -> padding removed ->
    ``size``; returns ``(Q, *size)``."""
    m = F.interpolate(
        mask_logits[:, t][None], size=tuple(padded_size), mode="bilinear", align_corners=False
    )[..., : image_size[0], : image_size[1]]
    if tuple(image_size) != tuple(size):
        m = F.interpolate(m, size=tuple(size), mode="bilinear", align_corners=False)
    return m[0]


def frame_mask_probs(
    mask_logits: torch.Tensor, t: int, padded_size: Size, image_size: Size, size: Size
) -> torch.Tensor:
    """Mask probabilities ``(Q, *size)`` of frame ``t`` (:func:`frame_mask_logits`); no queries
    give an empty ``(0, *size)``."""
    if len(mask_logits) == 0:
        return mask_logits.new_empty((0, *size))
    return frame_mask_logits(mask_logits, t, padded_size, image_size, size).sigmoid_()


def resized_mask_probs(mask_logits: torch.Tensor, padded_size: Size, image_size: Size):
    """``(Q, T, H, W)`` mask probabilities at the resized frame size (what the frames show)."""
    return torch.stack(
        [
            frame_mask_probs(mask_logits, t, padded_size, image_size, image_size)
            for t in range(mask_logits.shape[1])
        ],
        dim=1,
    )


def clip_queries(
    outputs: Dict,
    b: int,
    frames: torch.Tensor,
    vocabulary: Sequence[Tuple[str, ...]],
    class_embeds: torch.Tensor,
    is_base: torch.Tensor,
    padded_size: Size,
    image_size: Size,
) -> ClipQueries:
    """What the class sources see of clip ``b`` of a batch's decoder ``outputs``.

    Args:
        frames: uint8 ``(T, 3, H, W)`` the clip's resized frames (mapper ``images``).
        class_embeds: ``(K, E)`` text embeddings of ``vocabulary``; ``is_base`` bool ``(K,)``.
        padded_size, image_size: ``(Hp, Wp)`` of the batch, ``(H, W)`` of the clip's frames.
    """
    mask_logits = outputs["pred_masks"][b].float()  # (Q, T, h, w)

    @lru_cache(maxsize=1)
    def mask_probs() -> torch.Tensor:  # computed on first use; the sources see resized frames
        return resized_mask_probs(mask_logits, padded_size, image_size)

    return ClipQueries(
        pred_embeds=outputs["pred_embeds"][b],
        pred_objectness=outputs["pred_objectness"][b],
        mask_probs=mask_probs,
        frames=frames,
        audio_embeds=outputs["audio_embeds"][b],
        vocabulary=vocabulary,
        class_embeds=class_embeds,
        is_base=is_base,
    )


def clip_level_scores(scores: torch.Tensor) -> torch.Tensor:
    """``(Q, K)`` scores on which a clip's instances are chosen: ``scores (Q, K)`` as they are,
    per-frame ``(Q, T, K)`` at their best frame (an object that sounds in any frame is kept)."""
    return scores.amax(1) if scores.dim() == 3 else scores


def clip_results(
    scores: torch.Tensor,
    mask_logits: torch.Tensor,
    *,
    padded_size: Size,
    image_size: Size,
    output_size: Size,
    top_k: int,
    score_threshold: float,
    mask_threshold: float,
    semantic_from: str = "masks",
) -> List[Dict]:
    """Per-frame outputs of one clip.

    Args:
        scores: ``(Q, K)`` query class scores ``p_fg * p_cls``, or ``(Q, T, K)`` per frame: then
            the instances are chosen on their best frame (:func:`clip_level_scores`) and scored
            per frame, and an instance's mask is empty in the frames where its score does not
            pass ``score_threshold`` (not painted there, also by "instances" semantic maps;
            "masks" semantic maps weigh each query by its score in the frame).
        mask_logits: ``(Q, T, h, w)``.
        semantic_from: "masks" (:func:`semantic_from_masks`, every query's mask resized to the
            output size) or "instances" (:func:`paint_instances`, the kept queries' masks only).
    Returns:
        T dicts with ``sem_seg (K+1, H0, W0)`` and ``instances`` (``Instances((H0, W0))``:
        ``pred_masks`` bool, ``scores``, ``pred_classes``).
    """
    num_frames = mask_logits.shape[1]
    per_frame = scores.dim() == 3
    if per_frame and scores.shape[1] != num_frames:
        raise ValueError(
            f"per-frame scores {tuple(scores.shape)} for a clip of {num_frames} frames"
        )
    keep_q, keep_k, keep_s = select_instances(clip_level_scores(scores), top_k, score_threshold)
    # Painting needs the kept queries' masks only; the dense map needs every query's.
    painted = semantic_from != "masks"
    resized = mask_logits[keep_q] if painted else mask_logits  # (n or Q, T, h, w)
    results = []
    for t in range(num_frames):
        frame_scores = scores[:, t] if per_frame else scores  # (Q, K)
        prob = frame_mask_probs(resized, t, padded_size, image_size, output_size)
        instances = Instances(tuple(output_size))
        instances.pred_masks = (prob if painted else prob[keep_q]) > mask_threshold
        instances.scores = frame_scores[keep_q, keep_k] if per_frame else keep_s
        if per_frame:  # the same pairs in every frame (tracks), unpainted where they score low
            instances.pred_masks &= (instances.scores > score_threshold)[:, None, None]
        instances.pred_classes = keep_k
        if painted:
            sem = paint_instances(instances, scores.shape[-1])
        else:
            sem = semantic_from_masks(frame_scores, prob)
        results.append({"sem_seg": sem, "instances": instances})
    return results
