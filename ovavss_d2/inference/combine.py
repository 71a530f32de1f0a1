"""One output per frame from the windows covering it.

Rule (docs/DESIGN.md, "Video inference"): a frame covered by ``c`` windows gets

- ``sem_seg``: the mean of the ``c`` windows' ``(K+1, H, W)`` maps;
- one instance per track whose mask is non-empty there: the pixels that at least ``mask_vote`` of
  the ``c`` windows put in the track's mask (a window without the track counts as empty), the
  track's score there (the mean of its windows' object scores in that frame), and the track's
  class when the frame is emitted (the argmax of its evidence so far).

Memory: only frames not yet emitted are held (at most ``T`` of them).
"""

from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence

import torch
from detectron2.structures import Instances

from .tracking import MaskTracker, WindowObjects

__all__ = ["FrameCombiner"]


@dataclass
class _Pending:
    sem_seg: torch.Tensor  # (K+1, H, W) sum over covering windows
    windows: int = 0
    has_instances: bool = True
    votes: Dict[int, torch.Tensor] = field(default_factory=dict)  # track id -> (H, W) count
    scores: Dict[int, List[float]] = field(default_factory=dict)


class FrameCombiner:
    """Collect window outputs per frame; emit frames in order once no later window covers them."""

    def __init__(self, tracker: MaskTracker, mask_vote: float = 0.5):
        if not 0.0 < mask_vote <= 1.0:
            raise ValueError(f"TEST.VIDEO.MASK_VOTE must lie in (0, 1], got {mask_vote}")
        self.tracker = tracker
        self.mask_vote = mask_vote
        self._pending: Dict[int, _Pending] = {}
        self._next = 0  # next frame to emit

    def add(
        self,
        start: int,
        outputs: Sequence[Dict],
        objects: Optional[WindowObjects],
        ids: List[int],
    ) -> None:
        """Add a window: its per-frame model outputs, its objects (None for a semantic-only
        model) and their track ids."""
        for t, output in enumerate(outputs):
            frame = start + t
            if frame < self._next:
                raise RuntimeError(f"frame {frame} was already emitted")
            sem = output["sem_seg"].detach()
            pending = self._pending.get(frame)
            if pending is None:
                pending = self._pending[frame] = _Pending(torch.zeros_like(sem))
            pending.sem_seg += sem
            pending.windows += 1
            pending.has_instances &= objects is not None
            for j, track_id in enumerate(ids):
                mask = objects.masks[j, t]
                if track_id in pending.votes:
                    pending.votes[track_id] += mask
                else:
                    pending.votes[track_id] = mask.to(torch.int16)
                score = (
                    objects.scores if objects.frame_scores is None else objects.frame_scores[:, t]
                )
                pending.scores.setdefault(track_id, []).append(float(score[j]))

    def emit(self, before: int) -> Iterator[Dict]:
        """Yield the outputs of the frames before ``before`` not yet emitted, in order."""
        while self._next < before:
            pending = self._pending.pop(self._next, None)
            if pending is None:
                raise RuntimeError(f"frame {self._next} is covered by no window")
            self._next += 1
            yield self._frame_output(pending)

    def _frame_output(self, pending: _Pending) -> Dict:
        sem = pending.sem_seg / pending.windows
        if not pending.has_instances:
            return {"sem_seg": sem}
        height, width = sem.shape[-2:]
        kept = []
        for track_id, votes in pending.votes.items():
            mask = votes.float() >= self.mask_vote * pending.windows
            if mask.any():
                scores = pending.scores[track_id]
                kept.append((sum(scores) / len(scores), track_id, mask))
        kept.sort(key=lambda k: -k[0])
        instances = Instances((height, width))
        instances.pred_masks = (
            torch.stack([k[2] for k in kept]) if kept else torch.zeros(0, height, width).bool()
        )
        instances.scores = torch.tensor([k[0] for k in kept], dtype=torch.float32)
        instances.pred_classes = torch.tensor(
            [self.tracker.tracks[k[1]].class_id for k in kept], dtype=torch.int64
        )
        instances.track_ids = torch.tensor([k[1] for k in kept], dtype=torch.int64)
        return {"sem_seg": sem, "instances": instances}
