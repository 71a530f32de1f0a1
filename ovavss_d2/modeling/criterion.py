"""Set-prediction losses of OV-AVSS: objectness and class cross-entropy, mask BCE and dice.

Shape letters: B clips, Q queries, T frames, N ground-truth objects of a clip, K classes of the
training vocabulary (index K = no object), M matched (object, annotated frame) pairs of the batch,
P points, h x w prediction size, H x W (padded) target size.

Losses (unweighted; the meta-architecture multiplies them by ``weight_dict``):

- ``loss_objectness``: 2-way cross-entropy of the class-agnostic objectness head; matched queries
  are "object" (index 0), the others "no object" (index 1) with weight ``eos_coef``.
- ``loss_class``: (K+1)-way cross-entropy of the embedding classifier over the training vocabulary;
  unmatched queries target the background embedding (index K) with weight ``eos_coef``; queries
  matched to an unnamed object (label ``UNNAMED_LABEL``) take no part.
- ``loss_mask`` / ``loss_dice``: sigmoid BCE and dice of each matched query's mask on each
  *annotated* frame of its clip, on ``num_points`` points chosen by PointRend importance sampling,
  averaged over the (object, annotated frame) pairs of the batch (all workers).
- ``loss_frame_objectness`` (models with a per-frame sounding head): sigmoid BCE of
  ``pred_frame_objectness (B, Q, T)`` on every annotated frame; a matched query sounds in the frames
  where its object's mask is non-empty (label maps label an object only where it sounds) and is
  silent elsewhere; unmatched queries are silent in every frame, with weight ``eos_coef``
  (:func:`frame_objectness_targets`). A visible but silent object is never a ground-truth object,
  so the query on it is unmatched and learns "silent"; an object silent in some seconds is matched
  and learns "silent" in those frames only.

With deep supervision every entry of ``outputs["aux_outputs"]`` is matched on its own and adds the
same losses with the suffix ``_<i>``.
"""

from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from detectron2.projects.point_rend.point_features import (
    get_uncertain_point_coords_with_randomness,
    point_sample,
)
from detectron2.utils.comm import get_world_size
from torch import nn

from .matcher import annotated_frames

__all__ = [
    "UNNAMED_LABEL",
    "OVAVSSSetCriterion",
    "dice_loss",
    "frame_objectness_targets",
    "sigmoid_ce_loss",
]

LOSS_NAMES = ("objectness", "labels", "masks", "frame_objectness")
# The losses of clip-level models (``frame_objectness`` needs a per-frame sounding head).
CLIP_LOSS_NAMES = LOSS_NAMES[:3]
# Target label of an unnamed object (foreground without a name): matched and trained for objectness
# and masks, ignored by the class loss and the matcher's class cost.
UNNAMED_LABEL = -1


def dice_loss(inputs: torch.Tensor, targets: torch.Tensor, num_masks: float) -> torch.Tensor:
    """Dice loss summed over rows and divided by ``num_masks``.

    Args:
        inputs: mask logits ``(M, P)``.
        targets: binary targets ``(M, P)``.
        num_masks: normaliser.
    Returns:
        scalar tensor.
    """
    inputs = inputs.sigmoid()
    numerator = 2 * (inputs * targets).sum(-1)
    denominator = inputs.sum(-1) + targets.sum(-1)
    return (1 - (numerator + 1) / (denominator + 1)).sum() / num_masks


def sigmoid_ce_loss(inputs: torch.Tensor, targets: torch.Tensor, num_masks: float) -> torch.Tensor:
    """Binary cross-entropy averaged over points, summed over rows, divided by ``num_masks``.

    Args:
        inputs: mask logits ``(M, P)``.
        targets: binary targets ``(M, P)``.
        num_masks: normaliser.
    Returns:
        scalar tensor.
    """
    loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    return loss.mean(1).sum() / num_masks


def frame_objectness_targets(
    indices: Sequence[Tuple[torch.Tensor, torch.Tensor]],
    targets: Sequence[Dict[str, torch.Tensor]],
    num_queries: int,
    num_frames: int,
    eos_coef: float,
    device: torch.device,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-frame sounding targets of every query and their BCE weights, on ``device`` (no sync).

    Args:
        indices: B pairs ``(query_indices, target_indices)`` of the matcher.
        targets: B dicts with ``masks (N, T, H, W)`` and the annotated frames (``frames (Ta,)``
            or ``annotated (T,)``, :func:`annotated_frames`).
    Returns:
        ``(target, weight)``, both float ``(B, Q, T)``: target 1 where a matched query's object
        has a non-empty mask in frame t; weight 1 on matched queries, ``eos_coef`` on the others,
        0 on frames without labels.
    """
    batch = len(targets)
    target = torch.zeros(batch, num_queries, num_frames, device=device)
    weight = torch.full((batch, num_queries, num_frames), float(eos_coef), device=device)
    for b, ((query_idx, target_idx), t) in enumerate(zip(indices, targets)):
        # (N, T, H, W) -> (N, T): the object is labelled (sounds) in frame t
        sounding = t["masks"].flatten(2).any(-1).to(device=device, dtype=target.dtype)
        target[b, query_idx] = sounding[target_idx]
        weight[b, query_idx] = 1.0
        # (T,) 1 on annotated frames; index_fill and a product: no boolean indexing (a sync)
        annotated = torch.zeros(num_frames, device=device)
        annotated.index_fill_(0, annotated_frames(t, device), 1.0)
        weight[b] *= annotated
    return target, weight


def _uncertainty(logits: torch.Tensor) -> torch.Tensor:
    """PointRend uncertainty of mask logits ``(M, 1, P)``: high near the decision boundary."""
    return -torch.abs(logits)


class OVAVSSSetCriterion(nn.Module):
    """Hungarian-matched losses of OV-AVSS (see the module docstring)."""

    def __init__(
        self,
        *,
        num_classes: int,
        matcher: nn.Module,
        weight_dict: Dict[str, float],
        eos_coef: float,
        losses: Sequence[str] = CLIP_LOSS_NAMES,
        num_points: int = 12544,
        oversample_ratio: float = 3.0,
        importance_sample_ratio: float = 0.75,
    ):
        """
        Args:
            num_classes: K, classes of the training vocabulary (no-object excluded).
            matcher: a :class:`HungarianMatcher`-like module.
            weight_dict: loss name -> weight (applied by the meta-architecture).
            eos_coef: cross-entropy weight of the no-object / background targets (reference 0.1).
            losses: any of "objectness", "labels" (embedding classifier), "masks",
                "frame_objectness" (per-frame sounding head).
            num_points: points per (object, frame) for the mask losses (reference 112 * 112).
            oversample_ratio: PointRend oversampling factor (reference 3.0).
            importance_sample_ratio: fraction of points chosen by uncertainty (reference 0.75).
        """
        super().__init__()
        unknown = set(losses) - set(LOSS_NAMES)
        if unknown:
            raise ValueError(
                f"OVAVSSSetCriterion: unknown losses {sorted(unknown)}; use {LOSS_NAMES}"
            )
        self.num_classes = num_classes
        self.matcher = matcher
        self.weight_dict = dict(weight_dict)
        self.eos_coef = eos_coef
        self.losses = tuple(losses)
        self.num_points = num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio
        class_weight = torch.ones(num_classes + 1)
        class_weight[-1] = eos_coef
        self.register_buffer("class_weight", class_weight, persistent=False)
        self.register_buffer("objectness_weight", torch.tensor([1.0, eos_coef]), persistent=False)

    # -- individual losses --------------------------------------------------------------------

    def loss_objectness(self, outputs, targets, indices, num_masks) -> Dict[str, torch.Tensor]:
        """2-way CE: matched queries -> 0 (object), the rest -> 1 (no object)."""
        logits = outputs["pred_objectness"].float()  # (B, Q, 2)
        target = torch.ones(logits.shape[:2], dtype=torch.int64, device=logits.device)
        batch_idx, query_idx = self._query_permutation(indices)
        target[batch_idx, query_idx] = 0
        loss = F.cross_entropy(logits.transpose(1, 2), target, self.objectness_weight.to(logits))
        return {"loss_objectness": loss}

    def loss_labels(self, outputs, targets, indices, num_masks) -> Dict[str, torch.Tensor]:
        """(K+1)-way CE of the embedding classifier: matched -> object class, the rest -> K;
        queries matched to unnamed objects are ignored."""
        logits = outputs["pred_logits"].float()  # (B, Q, K+1)
        if logits.shape[-1] != self.num_classes + 1:
            raise ValueError(
                f"pred_logits has {logits.shape[-1]} classes, the criterion expects "
                f"{self.num_classes} + 1 (no object)"
            )
        target = torch.full(
            logits.shape[:2], self.num_classes, dtype=torch.int64, device=logits.device
        )
        batch_idx, query_idx = self._query_permutation(indices)
        matched = [t["labels"][j] for t, (_, j) in zip(targets, indices)]
        if matched:
            target[batch_idx, query_idx] = torch.cat(matched)
        loss = F.cross_entropy(
            logits.transpose(1, 2),
            target,
            self.class_weight.to(logits),
            ignore_index=UNNAMED_LABEL,
        )
        return {"loss_class": loss}

    def loss_masks(self, outputs, targets, indices, num_masks) -> Dict[str, torch.Tensor]:
        """BCE and dice on importance-sampled points of every matched (object, annotated frame)."""
        pred_masks = outputs["pred_masks"]  # (B, Q, T, h, w)
        src_list, tgt_list = [], []
        for b, ((query_idx, target_idx), target) in enumerate(zip(indices, targets)):
            frames = annotated_frames(target, pred_masks.device)
            if query_idx.numel() == 0 or frames.numel() == 0:
                continue
            # (n, Ta, h, w) -> (n*Ta, h, w)
            src_list.append(pred_masks[b, query_idx][:, frames].flatten(0, 1))
            tgt_list.append(target["masks"][target_idx][:, frames].flatten(0, 1))
        if not src_list:
            zero = pred_masks.sum() * 0.0  # keeps the graph connected for DDP
            return {"loss_mask": zero, "loss_dice": zero}
        src = torch.cat(src_list)[:, None].float()  # (M, 1, h, w)
        tgt = torch.cat(tgt_list)[:, None].to(src)  # (M, 1, H, W)
        with torch.no_grad():
            coords = get_uncertain_point_coords_with_randomness(
                src,
                _uncertainty,
                self.num_points,
                self.oversample_ratio,
                self.importance_sample_ratio,
            )  # (M, P, 2)
            point_labels = point_sample(tgt, coords, align_corners=False).squeeze(1)  # (M, P)
        point_logits = point_sample(src, coords, align_corners=False).squeeze(1)  # (M, P)
        return {
            "loss_mask": sigmoid_ce_loss(point_logits, point_labels, num_masks),
            "loss_dice": dice_loss(point_logits, point_labels, num_masks),
        }

    def loss_frame_objectness(
        self, outputs, targets, indices, num_masks
    ) -> Dict[str, torch.Tensor]:
        """Per-frame sounding BCE (:func:`frame_objectness_targets`), mean over its weights."""
        logits = outputs["pred_frame_objectness"].float()  # (B, Q, T)
        target, weight = frame_objectness_targets(
            indices, targets, logits.shape[1], logits.shape[2], self.eos_coef, logits.device
        )
        loss = F.binary_cross_entropy_with_logits(logits, target, weight, reduction="sum")
        # no annotated frame in the batch: 0 with the graph kept (DDP)
        return {"loss_frame_objectness": loss / weight.sum().clamp(min=1e-6)}

    # -- driver -----------------------------------------------------------------------------------

    @staticmethod
    def _query_permutation(indices) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(batch_idx, query_idx)`` of the matched queries, on the indices' device."""
        batch_idx = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)])
        query_idx = torch.cat([src for src, _ in indices])
        return batch_idx, query_idx

    def _num_masks(self, targets: List[Dict[str, torch.Tensor]], device) -> float:
        """(object, annotated frame) pairs in the batch, averaged over workers, at least 1.

        Counted on the host (``annotated`` is a host tensor); only with several workers does the
        count travel to the device and back (one all-reduce and one sync per step).
        """
        count = sum(int(t["labels"].numel()) * int(t["annotated"].sum()) for t in targets)
        if get_world_size() == 1:
            return max(float(count), 1.0)
        num = torch.tensor([float(count)]).to(device, non_blocking=True)
        torch.distributed.all_reduce(num)
        return max(num.item() / get_world_size(), 1.0)

    def _losses_of(self, outputs, targets, num_masks) -> Dict[str, torch.Tensor]:
        indices = self.matcher(outputs, targets)
        losses: Dict[str, torch.Tensor] = {}
        for name in self.losses:
            losses.update(getattr(self, f"loss_{name}")(outputs, targets, indices, num_masks))
        return losses

    def forward(
        self, outputs: Dict[str, torch.Tensor], targets: List[Dict[str, torch.Tensor]]
    ) -> Dict[str, torch.Tensor]:
        """
        Args:
            outputs: ``pred_objectness (B, Q, 2)``, ``pred_logits (B, Q, K+1)``,
                ``pred_masks (B, Q, T, h, w)``, ``pred_frame_objectness (B, Q, T)`` (for the
                "frame_objectness" loss), optional ``aux_outputs`` (list of such dicts).
            targets: B dicts: ``labels (N,)`` int64 in [0, K) or ``UNNAMED_LABEL`` and
                ``masks (N, T, H, W)`` (padded to the image batch size) on the outputs' device,
                ``annotated (T,)`` bool on the host, optionally ``frames (Ta,)`` its indices on
                the device (``prepare_targets``).
        Returns:
            unweighted losses; aux losses carry the suffix ``_<i>``.
        """
        num_masks = self._num_masks(targets, outputs["pred_masks"].device)
        main = {k: v for k, v in outputs.items() if k != "aux_outputs"}
        losses = self._losses_of(main, targets, num_masks)
        for i, aux in enumerate(outputs.get("aux_outputs", [])):
            for k, v in self._losses_of(aux, targets, num_masks).items():
                losses[f"{k}_{i}"] = v
        return losses

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, losses={self.losses}, eos_coef={self.eos_coef}, "
            f"num_points={self.num_points}, oversample_ratio={self.oversample_ratio}, "
            f"importance_sample_ratio={self.importance_sample_ratio}"
        )
