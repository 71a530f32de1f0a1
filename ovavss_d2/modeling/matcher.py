"""Hungarian matching between the queries of a clip and its ground-truth objects.

Shape letters: B clips, Q queries, T frames, Ta annotated frames of one clip, N ground-truth objects
of one clip, K classes of the training vocabulary (the no-object class is index K), P points,
h x w prediction size, H x W target size.

A query predicts one mask per frame of its clip (video-level masks, as in the reference). The cost
of assigning query q to object n is

    w_obj * (-p_obj(q)) + w_cls * (-p_cls(q, c_n)) + w_mask * BCE(q, n) + w_dice * dice(q, n)
        + w_frame * BCE_frames(q, n)

where ``p_obj`` is the softmax probability of the class-agnostic "sounding object" output of the
objectness head, ``p_cls`` the softmax probability of the embedding classifier for the object's
class, and the mask costs are averaged over P points sampled uniformly (shared by predictions and
targets) on every *annotated* frame of the clip; unannotated frames (AVSBench v1s training frames
1..4) contribute nothing. An unnamed object (label -1, unnamed foreground) has no class cost.
1..4) contribute nothing. ``BCE_frames`` (models with a per-frame sounding head) is the mean over
annotated frames of the BCE of the query's per-frame sounding logits against "object n's mask is
non-empty in frame t".
"""

from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from detectron2.projects.point_rend.point_features import point_sample
from scipy.optimize import linear_sum_assignment
from torch import nn

__all__ = ["HungarianMatcher", "annotated_frames", "batch_dice_cost", "batch_sigmoid_ce_cost"]


def annotated_frames(target: Dict[str, torch.Tensor], device: torch.device) -> torch.Tensor:
    """``(Ta,)`` int64 indices of a clip's annotated frames on ``device``: the target's ``frames``
    (put there by ``prepare_targets``, uploaded once per step) or, without it, computed from the
    host mask ``annotated (T,)``."""
    frames = target.get("frames")
    if frames is None:
        frames = target["annotated"].nonzero(as_tuple=True)[0]
    return frames.to(device, non_blocking=True)


def batch_dice_cost(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Pairwise dice cost.

    Args:
        inputs: mask logits ``(Q, P)``.
        targets: binary targets ``(N, P)``.
    Returns:
        ``(Q, N)`` tensor of ``1 - (2 |X.Y| + 1) / (|X| + |Y| + 1)`` with X = sigmoid(inputs).
    """
    inputs = inputs.sigmoid()
    numerator = 2 * inputs @ targets.t()  # (Q, N)
    denominator = inputs.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


def batch_sigmoid_ce_cost(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Pairwise binary cross-entropy cost, averaged over points.

    Args:
        inputs: mask logits ``(Q, P)``.
        targets: binary targets ``(N, P)``.
    Returns:
        ``(Q, N)`` tensor: mean over points of ``BCE(sigmoid(inputs[q]), targets[n])``.
    """
    num_points = inputs.shape[1]
    if num_points == 0:
        return inputs.new_zeros(inputs.shape[0], targets.shape[0])
    pos = F.binary_cross_entropy_with_logits(inputs, torch.ones_like(inputs), reduction="none")
    neg = F.binary_cross_entropy_with_logits(inputs, torch.zeros_like(inputs), reduction="none")
    cost = pos @ targets.t() + neg @ (1 - targets).t()
    return cost / num_points


class HungarianMatcher(nn.Module):
    """One-to-one assignment of queries to ground-truth objects, per clip (scipy's Hungarian).

    Costs are computed without gradients. Weights of 0 switch a cost term off.
    """

    def __init__(
        self,
        *,
        cost_objectness: float = 2.0,
        cost_class: float = 2.0,
        cost_mask: float = 5.0,
        cost_dice: float = 5.0,
        num_points: int = 12544,
        cost_frame_objectness: float = 0.0,
    ):
        """
        Args:
            cost_objectness: weight of ``-p_obj`` (objectness head; 0 disables it).
            cost_class: weight of ``-p_cls`` (embedding classifier; 0 disables it).
            cost_mask: weight of the sigmoid BCE mask cost.
            cost_dice: weight of the dice cost.
            num_points: points sampled uniformly per frame for the mask costs.
            cost_frame_objectness: weight of the per-frame sounding BCE (needs
                ``pred_frame_objectness``; 0 disables it).
        """
        super().__init__()
        costs = (cost_objectness, cost_class, cost_mask, cost_dice, cost_frame_objectness)
        if all(c == 0 for c in costs):
            raise ValueError("HungarianMatcher: all matching costs are 0")
        self.cost_objectness = cost_objectness
        self.cost_class = cost_class
        self.cost_mask = cost_mask
        self.cost_dice = cost_dice
        self.num_points = num_points
        self.cost_frame_objectness = cost_frame_objectness

    @torch.no_grad()
    def cost_matrix(
        self,
        outputs: Dict[str, torch.Tensor],
        target: Dict[str, torch.Tensor],
        point_coords: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Cost of every (query, object) pair of ONE clip, on the outputs' device.

        Args:
            outputs: ``pred_objectness (Q, 2)`` (index 0 = object), ``pred_logits (Q, K+1)``,
                ``pred_masks (Q, T, h, w)``, ``pred_frame_objectness (Q, T)`` (for its cost).
            target: ``labels (N,)`` int64 in [0, K) or -1 (unnamed: no class cost),
                ``masks (N, T, H, W)``, ``annotated (T,)`` bool on the host, optionally
                ``frames (Ta,)`` (:func:`annotated_frames`).
            point_coords: ``(P, 2)`` normalised [0, 1] (x, y) coordinates; uniform random if None.
        Returns:
            ``(Q, N)`` float32 cost matrix.
        """
        labels = target["labels"]
        pred_masks = outputs["pred_masks"]
        num_queries = pred_masks.shape[0]
        cost = pred_masks.new_zeros(num_queries, labels.shape[0], dtype=torch.float32)
        if labels.numel() == 0:
            return cost
        if self.cost_objectness:
            prob_obj = outputs["pred_objectness"].float().softmax(-1)[:, 0]  # (Q,)
            cost = cost - self.cost_objectness * prob_obj[:, None]
        if self.cost_class:
            prob_cls = outputs["pred_logits"].float().softmax(-1)  # (Q, K+1)
            named = (labels >= 0).to(prob_cls)  # (N,) 0 for unnamed objects
            cost = cost - self.cost_class * prob_cls[:, labels.clamp(min=0)] * named
        frames = annotated_frames(target, pred_masks.device)
        if self.cost_frame_objectness and frames.numel() > 0:
            logits = outputs["pred_frame_objectness"][:, frames].float()  # (Q, Ta)
            sounding = target["masks"][:, frames].flatten(2).any(-1).to(logits)  # (N, Ta)
            cost = cost + self.cost_frame_objectness * batch_sigmoid_ce_cost(logits, sounding)
        if self.cost_mask or self.cost_dice:
            if frames.numel() > 0:
                out_mask = pred_masks[:, frames].float()  # (Q, Ta, h, w)
                tgt_mask = target["masks"][:, frames].to(out_mask)  # (N, Ta, H, W)
                if point_coords is None:
                    point_coords = torch.rand(self.num_points, 2, device=out_mask.device)
                coords = point_coords.to(out_mask)[None]  # (1, P, 2), same points on every frame
                # (Q, Ta, h, w) -> (Q, Ta, P) -> (Q, Ta*P); targets likewise.
                out_pts = point_sample(
                    out_mask, coords.expand(num_queries, -1, -1), align_corners=False
                )
                tgt_pts = point_sample(
                    tgt_mask, coords.expand(tgt_mask.shape[0], -1, -1), align_corners=False
                )
                out_pts, tgt_pts = out_pts.flatten(1), tgt_pts.flatten(1)
                if self.cost_mask:
                    cost = cost + self.cost_mask * batch_sigmoid_ce_cost(out_pts, tgt_pts)
                if self.cost_dice:
                    cost = cost + self.cost_dice * batch_dice_cost(out_pts, tgt_pts)
        return cost

    @torch.no_grad()
    def forward(
        self, outputs: Dict[str, torch.Tensor], targets: List[Dict[str, torch.Tensor]]
    ) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """Match every clip of the batch.

        The clips' cost matrices are computed on the device and downloaded together (one
        device-to-host copy per call, none when no clip has an object); scipy solves each clip on
        the host and the assignments go back to the device in one non-blocking copy.

        Args:
            outputs: ``pred_objectness (B, Q, 2)``, ``pred_logits (B, Q, K+1)``,
                ``pred_masks (B, Q, T, h, w)``.
            targets: B dicts with ``labels (N,)``, ``masks (N, T, H, W)``, ``annotated (T,)``.
        Returns:
            B pairs ``(query_indices, target_indices)``, int64 tensors of length ``min(Q, N)`` on
            the outputs' device.
        """
        device = outputs["pred_masks"].device
        keys = ("pred_objectness", "pred_logits", "pred_masks", "pred_frame_objectness")
        costs = [
            self.cost_matrix({k: v[b] for k, v in outputs.items() if k in keys}, target)
            for b, target in enumerate(targets)
        ]  # B x (Q, N_b)
        sizes = [cost.shape[1] for cost in costs]
        if sum(sizes) == 0:
            empty = torch.zeros(0, dtype=torch.int64, device=device)
            return [(empty, empty) for _ in targets]
        host = torch.cat(costs, dim=1).cpu().numpy()  # (Q, sum N_b): the one download
        if not np.isfinite(host).all():
            raise FloatingPointError("HungarianMatcher: non-finite matching cost")
        matches = [
            linear_sum_assignment(cost) for cost in np.split(host, np.cumsum(sizes)[:-1], axis=1)
        ]  # B pairs of (min(Q, N_b),) arrays
        flat = np.concatenate([np.concatenate(pair) for pair in matches]).astype(np.int64)
        flat = torch.from_numpy(flat).to(device, non_blocking=True)
        lengths = [len(rows) for rows, _ in matches]
        pairs = flat.split([2 * n for n in lengths])  # B x (rows then cols)
        return [(pair[:n], pair[n:]) for pair, n in zip(pairs, lengths)]

    def __repr__(self) -> str:
        return (
            f"HungarianMatcher(cost_objectness={self.cost_objectness}, "
            f"cost_class={self.cost_class}, "
            f"cost_mask={self.cost_mask}, cost_dice={self.cost_dice}, "
            f"num_points={self.num_points}, "
            f"cost_frame_objectness={self.cost_frame_objectness})"
        )
