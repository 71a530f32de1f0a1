"""Turn per-frame predictions into what a user looks at: overlays, palette label maps, records.

Every function takes the detected objects of one frame as an ``Instances`` with ``pred_masks``
``(N, H, W)``, ``scores`` ``(N,)``, ``pred_classes`` ``(N,)`` (0-based indices into the
vocabulary) and, from ``VideoPredictor``, ``track_ids`` ``(N,)``. Class ``k`` of the vocabulary
has label index ``k + 1`` and the PASCAL-VOC palette colour of that index (background is index 0,
black) in the label PNG; the overlay colours an object by its track (by its class without one).
"""

from pathlib import Path
from typing import Dict, List, Mapping, Sequence, Tuple, Union

import numpy as np
import torch
from detectron2.structures import Instances
from detectron2.utils.colormap import colormap
from detectron2.utils.visualizer import Visualizer
from PIL import Image

from ..data.class_lists import palette

_PALETTE = palette(256)
_TRACK_COLORS = colormap(rgb=True, maximum=1)  # (74, 3) floats in [0, 1]; track i: row i % 74


def track_color(track_id: int) -> np.ndarray:
    """Overlay colour of a track, RGB floats in [0, 1]."""
    return _TRACK_COLORS[int(track_id) % len(_TRACK_COLORS)]


def select_instances(instances: Instances, score_threshold: float) -> Instances:
    """Keep the objects scoring at least ``score_threshold``, highest score first, on the CPU."""
    instances = instances.to("cpu")
    keep = instances.scores >= score_threshold
    selected = instances[keep]
    return selected[torch.argsort(selected.scores, descending=True)]


def label_map(instances: Instances, height: int, width: int) -> np.ndarray:
    """Paint objects into an ``(H, W)`` uint8 map of label indices (0 background, class k -> k+1).

    Where masks overlap, the higher-scoring object wins.
    """
    if len(instances) and int(instances.pred_classes.max()) + 1 > 255:
        raise ValueError("a palette label map holds at most 255 classes")
    out = np.zeros((height, width), dtype=np.uint8)
    order = torch.argsort(instances.scores)  # ascending: higher scores are painted last
    for i in order.tolist():
        out[instances.pred_masks[i].numpy().astype(bool)] = int(instances.pred_classes[i]) + 1
    return out


def save_label_png(labels: np.ndarray, path: Union[str, Path]) -> None:
    """Write an ``(H, W)`` uint8 label map as an 8-bit PNG with the PASCAL-VOC palette."""
    image = Image.fromarray(labels)  # mode "L"; putpalette makes it "P"
    image.putpalette(_PALETTE.reshape(-1).tolist())
    image.save(path)


def instance_records(instances: Instances, vocabulary: Sequence[str]) -> List[Dict]:
    """One JSON-ready record per object: class, label index, score, mask area, box, track id.

    ``box`` is ``[x0, y0, x1, y1]`` in pixels, the tight box of the mask (``x1``, ``y1``
    exclusive); ``area`` is the mask's pixel count; ``track_id`` is present when the instances
    carry ``track_ids``.
    """
    records = []
    tracks = instances.track_ids.tolist() if instances.has("track_ids") else None
    for i, (mask, score, cls) in enumerate(
        zip(instances.pred_masks, instances.scores, instances.pred_classes)
    ):
        mask = mask.numpy().astype(bool)
        ys, xs = np.nonzero(mask)
        box = (
            [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
            if len(xs)
            else None
        )
        records.append(
            {
                "class": vocabulary[int(cls)],
                "label": int(cls) + 1,
                "score": round(float(score), 4),
                "area": int(mask.sum()),
                "box": box,
            }
        )
        if tracks is not None:
            records[-1]["track_id"] = int(tracks[i])
    return records


def track_summaries(
    frames: Sequence[Dict], tracks: Mapping, vocabulary: Sequence[str], fps: float
) -> List[Dict]:
    """Per track: its class, mean score, first and last time, seconds sounding, frames.

    Args:
        frames: the demo's per-frame records (``time`` and ``objects`` with ``track_id``).
        tracks: ``VideoPredictor.tracks`` (track id -> Track with ``class_id``).
        vocabulary: display names.
        fps: segmented frames per second (each frame in which a track is seen counts 1/fps s).
    """
    seen: Dict[int, Dict] = {}
    for record in frames:
        for obj in record["objects"]:
            if "track_id" not in obj:
                continue
            entry = seen.setdefault(obj["track_id"], {"times": [], "scores": [], "names": set()})
            entry["times"].append(record["time"])
            entry["scores"].append(obj["score"])
            entry["names"].add(obj["class"])
    summaries = []
    for track_id in sorted(seen):
        entry = seen[track_id]
        track = tracks.get(track_id)
        name = vocabulary[track.class_id] if track is not None else sorted(entry["names"])[0]
        summaries.append(
            {
                "track_id": track_id,
                "class": name,
                "mean_score": round(float(np.mean(entry["scores"])), 4),
                "first_time": entry["times"][0],
                "last_time": entry["times"][-1],
                "seconds_sounding": round(len(entry["times"]) / fps, 4),
                "num_frames": len(entry["times"]),
                "names_shown": sorted(entry["names"]),
            }
        )
    return summaries


def render_frame(
    frame: np.ndarray,
    instances: Instances,
    vocabulary: Sequence[str],
    score_threshold: float,
    label_file: Union[str, Path],
) -> Tuple[np.ndarray, List[Dict]]:
    """One segmented frame's results: the objects scoring at least ``score_threshold`` painted
    into a palette label PNG written to ``label_file``, drawn on the frame, and as JSON records.

    Returns:
        ``(overlay, records)``: the ``(H, W, 3)`` uint8 RGB frame with the objects drawn
        (:func:`draw_instances`) and :func:`instance_records` of the objects.
    """
    selected = select_instances(instances, score_threshold)
    save_label_png(label_map(selected, *frame.shape[:2]), label_file)
    return draw_instances(frame, selected, vocabulary), instance_records(selected, vocabulary)


def draw_instances(
    frame: np.ndarray, instances: Instances, vocabulary: Sequence[str], alpha: float = 0.5
) -> np.ndarray:
    """Draw masks with "class #track score" labels on an ``(H, W, 3)`` uint8 RGB frame.

    Uses Detectron2's Visualizer. With ``track_ids``, an object has its track's colour
    (:func:`track_color`) and its label names the track; without, the palette colour of its class
    (as in the label PNG) and "class score".
    """
    if len(instances) == 0:
        return frame.copy()
    visualizer = Visualizer(frame)
    classes = instances.pred_classes.tolist()
    scores = instances.scores.tolist()
    if instances.has("track_ids"):
        ids = instances.track_ids.tolist()
        labels = [f"{vocabulary[c]} #{i} {s:.0%}" for c, i, s in zip(classes, ids, scores)]
        colors = [track_color(i) for i in ids]
    else:
        labels = [f"{vocabulary[c]} {s:.0%}" for c, s in zip(classes, scores)]
        colors = [_PALETTE[c + 1] / 255.0 for c in classes]
    drawn = visualizer.overlay_instances(
        masks=instances.pred_masks.numpy().astype(bool),
        labels=labels,
        assigned_colors=colors,
        alpha=alpha,
    )
    return drawn.get_image()
