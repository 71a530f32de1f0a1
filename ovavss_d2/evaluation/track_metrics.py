"""Track metrics of video inference: name switches and identity switches (docs/METRICS.md).

A ground-truth object is a class of a clip's label maps (in AVSS-Synth-Long every object has its
own class); its frames are those where it sounds. In every labelled frame, ground-truth objects
and predicted objects are matched one to one by Hungarian matching on mask IoU
(``scipy.optimize.linear_sum_assignment``), pairs below ``iou_threshold`` discarded. Along each
ground-truth object's matched frames, in time order:

- a *name switch* is a frame whose matched prediction has another class than at the previous
  matched frame;
- an *identity switch* is a frame whose matched prediction has another track id than at the
  previous matched frame.

Both are reported per ground-truth object (track); ``match_rate`` is the share of ground-truth
object-frames that are matched. Shape letters: ``N`` predicted objects, ``H x W`` frame size.
"""

from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["match_frame", "TrackMetrics"]


def match_frame(
    label: np.ndarray,
    pred_masks: np.ndarray,
    iou_threshold: float = 0.5,
    ignore_label: int = 255,
) -> Dict[int, Tuple[int, float]]:
    """Match the ground-truth objects of one frame to predicted masks.

    Args:
        label: ``(H, W)`` int class indices (0 background, ``ignore_label`` ignored).
        pred_masks: bool ``(N, H, W)``.
    Returns:
        ground-truth class -> (index of its predicted mask, IoU), for matches at or above the
        threshold. Ignored pixels count for neither side.
    """
    valid = label != ignore_label
    classes = [int(c) for c in np.unique(label[valid]) if c != 0]
    if not classes or len(pred_masks) == 0:
        return {}
    gt = np.stack([(label == c) for c in classes]).reshape(len(classes), -1)
    pred = (np.asarray(pred_masks, dtype=bool) & valid[None]).reshape(len(pred_masks), -1)
    inter = gt.astype(np.float64) @ pred.T.astype(np.float64)  # (G, N)
    union = gt.sum(1)[:, None] + pred.sum(1)[None, :] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    rows, cols = linear_sum_assignment(-iou)
    return {
        classes[r]: (int(c), float(iou[r, c]))
        for r, c in zip(rows, cols)
        if iou[r, c] >= iou_threshold and iou[r, c] > 0
    }


class TrackMetrics:
    """Accumulate name and identity switches over clips; :meth:`summarize` gives the figures."""

    def __init__(self, iou_threshold: float = 0.5, ignore_label: int = 255):
        self.iou_threshold = iou_threshold
        self.ignore_label = ignore_label
        # (clip, gt class) -> per labelled frame where it sounds: (track id, class) or None
        self._history: Dict[Tuple[str, int], List[Optional[Tuple[int, int]]]] = defaultdict(list)

    def process_frame(
        self,
        clip_id: str,
        label: np.ndarray,
        pred_masks: np.ndarray,
        pred_classes: Sequence[int],
        track_ids: Sequence[int],
    ) -> None:
        """Add one labelled frame (frames of a clip in time order)."""
        matches = match_frame(label, pred_masks, self.iou_threshold, self.ignore_label)
        valid = label != self.ignore_label
        for c in np.unique(label[valid]):
            if c == 0:
                continue
            match = matches.get(int(c))
            entry = (
                None if match is None else (int(track_ids[match[0]]), int(pred_classes[match[0]]))
            )
            self._history[(clip_id, int(c))].append(entry)

    def summarize(self) -> Dict[str, float]:
        """``name_switches_per_track``, ``id_switches_per_object``, ``match_rate`` and counts."""
        names = ids = matched = frames = 0
        for history in self._history.values():
            seen = [h for h in history if h is not None]
            frames += len(history)
            matched += len(seen)
            ids += sum(a[0] != b[0] for a, b in zip(seen, seen[1:]))
            names += sum(a[1] != b[1] for a, b in zip(seen, seen[1:]))
        objects = len(self._history)
        return {
            "name_switches_per_track": names / objects if objects else float("nan"),
            "id_switches_per_object": ids / objects if objects else float("nan"),
            "match_rate": 100.0 * matched / frames if frames else float("nan"),
            "gt_objects": objects,
            "gt_object_frames": frames,
            "name_switches": names,
            "id_switches": ids,
        }
