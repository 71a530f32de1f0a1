"""Turn per-frame predictions into what a user looks at: overlays, palette label maps, records.

Every function takes the detected objects of one frame as an ``Instances`` with ``pred_masks``
``(N, H, W)``, ``scores`` ``(N,)`` and ``pred_classes`` ``(N,)`` (0-based indices into the
vocabulary). Class ``k`` of the vocabulary has label index ``k + 1`` and the PASCAL-VOC palette
colour of that index (background is index 0, black), in the overlay as in the label PNG.
"""

from pathlib import Path
from typing import Dict, List, Sequence, Union

import numpy as np
import torch
from detectron2.structures import Instances
from detectron2.utils.visualizer import Visualizer
from PIL import Image

from ..data.class_lists import palette

_PALETTE = palette(256)


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
    """One JSON-ready record per object: class, label index, score, mask area and box.

    ``box`` is ``[x0, y0, x1, y1]`` in pixels, the tight box of the mask (``x1``, ``y1``
    exclusive); ``area`` is the mask's pixel count.
    """
    records = []
    for mask, score, cls in zip(instances.pred_masks, instances.scores, instances.pred_classes):
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
    return records


def draw_instances(
    frame: np.ndarray, instances: Instances, vocabulary: Sequence[str], alpha: float = 0.5
) -> np.ndarray:
    """Draw masks with "class score" labels on an ``(H, W, 3)`` uint8 RGB frame.

    Uses Detectron2's Visualizer; colours are the palette colours of the label PNG.
    """
    if len(instances) == 0:
        return frame.copy()
    visualizer = Visualizer(frame)
    classes = instances.pred_classes.tolist()
    drawn = visualizer.overlay_instances(
        masks=instances.pred_masks.numpy().astype(bool),
        labels=[f"{vocabulary[c]} {s:.0%}" for c, s in zip(classes, instances.scores.tolist())],
        assigned_colors=[_PALETTE[c + 1] / 255.0 for c in classes],
        alpha=alpha,
    )
    return drawn.get_image()
