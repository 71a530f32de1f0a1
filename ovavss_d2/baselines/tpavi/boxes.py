"""Object boxes derived from ground-truth masks (``ovavss_d2.modeling.crops``), the crop targets.

Shape letters: ``N`` objects of a clip (one per class present), ``T`` frames, ``H x W`` frame size,
``R`` crops of a batch.

One box per object and annotated frame: the tight box of the object's mask in that frame (no
hand labelling). An object is a class present in the clip, as the mapper's ``instances`` give it,
so two separate instances of one class share a box.
"""

from dataclasses import dataclass, fields
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ...modeling.crops import boxes_from_masks, expand_boxes

__all__ = ["CropTargets", "crop_targets_from_batch", "crop_class_ids"]


@dataclass
class CropTargets:
    """The crops of a batch, one row per (object, frame)."""

    boxes: torch.Tensor  # (R, 4) float (x0, y0, x1, y1) in the padded frame's pixels
    frame_index: torch.Tensor  # (R,) long, frame of the crop among the batch's N frames
    clip_index: torch.Tensor  # (R,) long, clip of the crop
    object_index: torch.Tensor  # (R,) long, object of the crop, unique over the batch
    labels: torch.Tensor  # (R,) long, class id of the object in the crop head, -1 unknown

    def __len__(self) -> int:
        return self.boxes.shape[0]


def crop_class_ids(clip: dict, class_ids: Optional[Dict[str, int]]) -> torch.Tensor:
    """Class id of each object of a clip for the crop head.

    Semantic datasets: the mapper's ``instances.gt_classes`` (0-based ids of the dataset's class
    list). Binary datasets collapse every object to "sounding", so the class comes from the clip's
    metadata (``class_names``) when it names exactly one class (AVSBench S4, single-source clips);
    otherwise the class is unknown (-1) and the object only enters the pairwise and audio losses.

    Args:
        clip: one mapper output dict.
        class_ids: class key -> 0-based id of the crop head's classes (None: no name lookup).

    Returns:
        ``(N,)`` long class ids, -1 unknown.
    """
    classes = clip["instances"].gt_classes
    if not clip.get("binary", False):
        return classes.clone()
    names = clip.get("class_names", [])
    unknown = torch.full_like(classes, -1)
    if class_ids is None or len(names) != 1 or names[0] not in class_ids:
        return unknown
    return torch.full_like(classes, class_ids[names[0]])


def crop_targets_from_batch(
    clips: Sequence[dict],
    *,
    class_ids: Optional[Dict[str, int]] = None,
    min_area: int = 1,
    margin: float = 0.0,
    max_crops: int = 0,
    generator: Optional[torch.Generator] = None,
) -> CropTargets:
    """Crop targets of a batch of mapper outputs (frames numbered clip after clip).

    Args:
        clips: mapper dicts with ``instances.gt_masks (N, T, H, W)``; frames of unannotated
            frames are all-False and give no crop.
        class_ids: see ``crop_class_ids``.
        min_area: masks with fewer pixels in a frame give no crop there.
        margin: each box grows by this fraction of its width / height on every side (the margin
            convention of ``ovavss_d2.modeling.crops``), clipped to the frame.
        max_crops: keep at most this many crops, choosing whole objects in random order (so an
            object keeps all its frames); 0 keeps all.
        generator: random source of that choice.

    Returns:
        ``CropTargets`` on the device of the masks.
    """
    rows: List[Tuple[torch.Tensor, torch.Tensor, int, torch.Tensor]] = []
    frame_offset, object_offset = 0, 0
    device = torch.device("cpu")
    for b, clip in enumerate(clips):
        inst = clip["instances"]
        masks = inst.gt_masks  # (N, T, H, W)
        device = masks.device
        num_obj, num_frames, h, w = masks.shape
        if num_frames != clip["images"].shape[0]:
            raise ValueError(
                f"gt_masks cover {num_frames} frames but the clip has {clip['images'].shape[0]}"
            )
        boxes, _ = boxes_from_masks(masks)  # (N, T, 4)
        keep = masks.flatten(2).sum(-1) >= max(min_area, 1)  # (N, T)
        boxes = expand_boxes(boxes, margin, clip_to=(h, w))
        labels = crop_class_ids(clip, class_ids).to(device)
        obj, t = keep.nonzero(as_tuple=True)
        rows.append((boxes[obj, t], t + frame_offset, b, obj + object_offset, labels[obj]))
        frame_offset += num_frames
        object_offset += num_obj

    if not rows:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return CropTargets(torch.zeros(0, 4, device=device), empty, empty, empty, empty)
    boxes = torch.cat([r[0] for r in rows])
    frame_index = torch.cat([r[1] for r in rows])
    clip_index = torch.cat([torch.full_like(r[1], r[2]) for r in rows])
    object_index = torch.cat([r[3] for r in rows])
    labels = torch.cat([r[4] for r in rows])
    targets = CropTargets(boxes, frame_index, clip_index, object_index, labels)
    if max_crops > 0 and len(targets) > max_crops:
        targets = _limit_crops(targets, max_crops, generator)
    return targets


def _limit_crops(
    targets: CropTargets, max_crops: int, generator: Optional[torch.Generator]
) -> CropTargets:
    """Keep whole objects in random order while the total stays within ``max_crops``.

    The first object is always kept, truncated to ``max_crops`` frames if it alone is too many.
    """
    objects, counts = torch.unique(targets.object_index, return_counts=True)
    order = torch.randperm(len(objects), generator=generator).tolist()
    chosen, total = [], 0
    for i in order:
        if total + int(counts[i]) <= max_crops or not chosen:
            chosen.append(int(objects[i]))
            total += int(counts[i])
    keep = torch.isin(
        targets.object_index, torch.tensor(chosen, device=targets.object_index.device)
    )
    keep = keep.nonzero().flatten()[:max_crops]
    return CropTargets(*(getattr(targets, f.name)[keep] for f in fields(CropTargets)))
