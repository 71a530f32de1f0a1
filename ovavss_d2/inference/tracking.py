"""Objects of consecutive windows associated into tracks through their masks.

A window's model output holds, per frame, the kept (query, class) pairs as ``Instances``; pair
``i`` is the same in every frame of the window, so it has a mask over the whole window (empty in
the frames where a model with per-frame scores says it is silent) and a score per frame.
:func:`window_objects` merges pairs whose masks coincide (one query named with several classes,
or duplicate queries) into objects with a class-score vector. :class:`MaskTracker` matches the
objects of each new window to the live tracks by Hungarian matching on mask IoU
(``scipy.optimize.linear_sum_assignment``) and accumulates each track's class evidence.

Shape letters: ``n`` objects of a window, ``T`` frames of the window, ``H x W`` frame size, ``K``
classes of the vocabulary.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from detectron2.config import configurable
from scipy.optimize import linear_sum_assignment

__all__ = ["WindowObjects", "window_objects", "Track", "MaskTracker"]


@dataclass
class WindowObjects:
    """The objects of one window."""

    start: int  # index of the window's first frame
    masks: torch.Tensor  # bool (n, T, H, W)
    scores: torch.Tensor  # (n,) best kept score of each object (at its best frame)
    class_scores: torch.Tensor  # (n, K): best kept score of each class, 0 where not kept
    # (n, T) each object's score in each frame; None: ``scores`` in every frame
    frame_scores: Optional[torch.Tensor] = None

    def __len__(self) -> int:
        return int(self.masks.shape[0])


def window_objects(
    outputs: Sequence[Dict], start: int, num_classes: int, dedup_iou: Optional[float]
) -> WindowObjects:
    """Objects of a window from its per-frame model outputs.

    Args:
        outputs: ``T`` dicts whose ``"instances"`` hold the same ``N`` pairs in every frame
            (``pred_masks`` ``(N, H, W)``, ``scores`` ``(N,)``, ``pred_classes`` ``(N,)``); a
            pair's score may differ between frames (per-frame sounding), its best frame counts.
        start: index of the window's first frame in the video.
        num_classes: ``K``.
        dedup_iou: pairs whose masks over the window have at least this IoU merge into one object
            (highest score first, its mask kept); None keeps every pair as its own object.
    """
    first = outputs[0]["instances"]
    masks = torch.stack([o["instances"].pred_masks for o in outputs], 1).cpu()  # (N, T, H, W)
    # (N, T) and (N,): a pair's score in each frame, and at its best frame
    frame_scores = torch.stack([o["instances"].scores.detach().float().cpu() for o in outputs], 1)
    scores, classes = frame_scores.amax(1), first.pred_classes.cpu()
    order = torch.argsort(scores, descending=True)
    flat = masks.flatten(1).float()
    areas = flat.sum(1)
    inter = flat @ flat.T
    iou = inter / (areas[:, None] + areas[None, :] - inter).clamp(min=1)
    heads: List[int] = []
    class_scores: List[torch.Tensor] = []
    for i in order.tolist():
        if areas[i] == 0:
            continue  # no pixel in any frame: nothing to track
        head = None
        if dedup_iou is not None:
            head = next((h for h, j in enumerate(heads) if iou[i, j] >= dedup_iou), None)
        if head is None:
            heads.append(i)
            class_scores.append(torch.zeros(num_classes))
            head = len(heads) - 1
        k = int(classes[i])
        class_scores[head][k] = max(float(class_scores[head][k]), float(scores[i]))
    if not heads:
        empty = masks[:0]
        return WindowObjects(
            start, empty, scores[:0], torch.zeros(0, num_classes), frame_scores[:0]
        )
    keep = torch.tensor(heads)
    return WindowObjects(
        start, masks[keep], scores[keep], torch.stack(class_scores), frame_scores[keep]
    )


@dataclass
class Track:
    """One tracked object: its identity, class evidence and where it was last seen."""

    track_id: int
    evidence: torch.Tensor  # (K,) accumulated log class scores
    num_windows: int = 0
    last_frame: int = -1  # last frame with a non-empty mask
    last_mask: Optional[torch.Tensor] = None  # bool (H, W) at last_frame
    recent: Dict[int, torch.Tensor] = field(default_factory=dict)  # frame -> (H, W) latest mask

    @property
    def class_id(self) -> int:
        """0-based vocabulary index of the track's name: the argmax of its evidence."""
        return int(torch.argmax(self.evidence))


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    union = (a | b).sum()
    return float((a & b).sum()) / float(union) if union else 0.0


class MaskTracker:
    """Give the objects of each window track ids that last across windows.

    Matching cost of a live track and a new object: their mask IoU summed over the frames both
    cover with a non-empty mask (overlapping windows); without such frames, the IoU of the
    track's last mask and the object's first non-empty mask, when at most ``max_gap`` frames lie
    between them. Pairs below ``match_iou`` are not matched; unmatched objects start new tracks.
    A track's class is ``argmax_k sum_windows log(max(score_k, evidence_floor))``.
    """

    @configurable
    def __init__(
        self,
        *,
        enabled: bool = True,
        match_iou: float = 0.3,
        max_gap: int = 3,
        evidence_floor: float = 0.05,
    ):
        if not 0.0 < match_iou <= 1.0:
            raise ValueError(f"TEST.VIDEO.TRACK.MATCH_IOU must lie in (0, 1], got {match_iou}")
        if max_gap < 0:
            raise ValueError(f"TEST.VIDEO.TRACK.MAX_GAP must be >= 0, got {max_gap}")
        if not 0.0 < evidence_floor <= 1.0:
            raise ValueError(
                f"TEST.VIDEO.TRACK.EVIDENCE_FLOOR must lie in (0, 1], got {evidence_floor}"
            )
        self.enabled = enabled
        self.match_iou = match_iou
        self.max_gap = max_gap
        self.evidence_floor = evidence_floor
        self.tracks: Dict[int, Track] = {}  # every track of the video so far, by id
        self._live: List[int] = []

    @classmethod
    def from_config(cls, cfg) -> Dict:
        track = cfg.TEST.VIDEO.TRACK
        return {
            "enabled": track.ENABLED,
            "match_iou": track.MATCH_IOU,
            "max_gap": track.MAX_GAP,
            "evidence_floor": track.EVIDENCE_FLOOR,
        }

    def update(self, objects: WindowObjects) -> List[int]:
        """Associate a window's objects with the tracks; returns the track id of each object."""
        start, length = objects.start, objects.masks.shape[1] if len(objects) else 0
        ended = [i for i in self._live if not self._alive(self.tracks[i], start)]
        for i in ended:  # an ended track keeps its evidence only: memory stays flat
            self.tracks[i].recent, self.tracks[i].last_mask = {}, None
        self._live = [i for i in self._live if i not in ended]
        for i in self._live:  # forget masks of frames before this window
            track = self.tracks[i]
            track.recent = {f: m for f, m in track.recent.items() if f >= start}
        ids: List[Optional[int]] = [None] * len(objects)
        if self.enabled and self._live and len(objects):
            cost = np.array(
                [
                    [self._match_iou(self.tracks[t], objects, j) for j in range(len(objects))]
                    for t in self._live
                ]
            )  # (live tracks, n)
            rows, cols = linear_sum_assignment(-cost)
            for r, c in zip(rows, cols):
                if cost[r, c] >= self.match_iou:
                    ids[c] = self._live[r]
        for j in range(len(objects)):
            if ids[j] is None:
                ids[j] = len(self.tracks)
                num_classes = objects.class_scores.shape[1]
                self.tracks[ids[j]] = Track(ids[j], torch.zeros(num_classes))
                self._live.append(ids[j])
            track = self.tracks[ids[j]]
            track.evidence += objects.class_scores[j].clamp(min=self.evidence_floor).log()
            track.num_windows += 1
            for t in range(length):
                mask = objects.masks[j, t]
                track.recent[start + t] = mask
                if mask.any() and start + t >= track.last_frame:
                    track.last_frame, track.last_mask = start + t, mask
        if not self.enabled:  # every window's objects are its own
            for i in self._live:
                self.tracks[i].recent, self.tracks[i].last_mask = {}, None
            self._live = []
        return [int(i) for i in ids]

    def _alive(self, track: Track, start: int) -> bool:
        """Whether an object first seen at ``start`` or later could still continue ``track``."""
        return start - track.last_frame - 1 <= self.max_gap or any(f >= start for f in track.recent)

    def _match_iou(self, track: Track, objects: WindowObjects, j: int) -> float:
        masks = objects.masks[j]  # (T, H, W)
        visible = masks.flatten(1).any(1)
        inter = union = 0
        for t in range(masks.shape[0]):
            previous = track.recent.get(objects.start + t)
            if previous is not None and bool(visible[t]) and bool(previous.any()):
                inter += int((previous & masks[t]).sum())
                union += int((previous | masks[t]).sum())
        if union:
            return inter / union
        if track.last_mask is None or not bool(visible.any()):
            return 0.0
        first = int(torch.nonzero(visible)[0])
        if objects.start + first - track.last_frame - 1 > self.max_gap:
            return 0.0
        return _iou(track.last_mask, masks[first])
