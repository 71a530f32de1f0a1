"""A per-frame view of a clip dataset, for Detectron2's image tools.

A clip dict (docs/DESIGN.md) lists its frames in ``file_names`` and their labels in
``sem_seg_file_names`` (palette RGB or index PNGs; None for a frame without a label). Detectron2's
image tools (``Visualizer.draw_dataset_dict``, its ``tools/visualize_data.py``) read one dict per
image with ``file_name`` and a ``sem_seg_file_name`` of class indices. The frame view is one such
dict per frame: ``file_name``, ``height``, ``width``, ``image_id`` (``"<clip_id>/<t>"``),
``clip_id``, ``frame_index`` and, for a frame with a label, either ``sem_seg_file_name`` (a uint8
class-index PNG written on demand into a cache folder) or ``sem_seg`` (the ``(H, W)`` uint8 class
indices, decoded in memory). Label values index the dataset's ``stuff_classes`` (0 background);
``ignore_label`` (255) marks pixels without a label.

Example::

    from ovavss_d2.data.frame_view import register_frame_view
    view = register_frame_view("avss_synth_train", cache_dir="output/label_cache")
    frame = DatasetCatalog.get(view)[0]  # -> Visualizer(...).draw_dataset_dict(frame)
"""

import hashlib
import os
from typing import Dict, Iterable, Iterator, Optional

import numpy as np
from detectron2.data import DatasetCatalog, MetadataCatalog
from PIL import Image

from .labels import IGNORE_LABEL, read_label_map

__all__ = ["frame_dicts", "index_label_file", "register_frame_view"]

# Metadata a frame view does not inherit: its clip dataset's evaluators expect clips.
_NOT_INHERITED = ("name", "evaluator_type")


def index_label_file(
    path: str,
    cache_dir: str,
    num_classes: int,
    *,
    binary: bool = False,
    ignore_label: int = IGNORE_LABEL,
) -> str:
    """The uint8 class-index PNG of label file ``path`` in ``cache_dir``: written when missing or
    older than ``path`` (atomically, so that data-loader workers may share the folder).

    Args:
        num_classes: ``K+1`` palette entries of the label files (``label_num_classes``).
        binary: collapse every class > 0 to 1 (binary AVS datasets).
    """
    if num_classes > 256 or not 0 <= ignore_label <= 255:
        raise ValueError(
            f"{path}: uint8 index labels hold at most 256 classes and an ignore value in "
            f"[0, 255], got {num_classes} classes and ignore_label {ignore_label}"
        )
    source = os.path.abspath(path)
    key = hashlib.sha1(f"{source}|{num_classes}|{binary}".encode()).hexdigest()[:20]
    target = os.path.join(cache_dir, f"{key}.png")
    if os.path.isfile(target) and os.path.getmtime(target) >= os.path.getmtime(source):
        return target
    label = read_label_map(source, num_classes, binary=binary, ignore_label=ignore_label)
    os.makedirs(cache_dir, exist_ok=True)
    partial = f"{target}.{os.getpid()}.tmp"
    Image.fromarray(label.astype(np.uint8), mode="L").save(partial, format="PNG")
    os.replace(partial, target)
    return target


def frame_dicts(
    clips: Iterable[Dict], metadata, *, cache_dir: Optional[str] = None
) -> Iterator[Dict]:
    """One Detectron2-style dict per frame of ``clips``, lazily (labels decoded as frames come).

    Args:
        clips: clip dicts of a registered dataset (``DatasetCatalog.get(name)``).
        metadata: its ``MetadataCatalog`` entry (``label_num_classes``, ``ignore_label``).
        cache_dir: folder of the index PNGs (``sem_seg_file_name``); None decodes each label
            into ``sem_seg`` in memory instead.
    """
    num_classes = int(
        getattr(metadata, "label_num_classes", len(getattr(metadata, "stuff_classes", [])))
    )
    ignore_label = int(getattr(metadata, "ignore_label", IGNORE_LABEL))
    for clip in clips:
        clip_id = str(clip.get("clip_id", os.path.dirname(clip["file_names"][0])))
        labels = clip.get("sem_seg_file_names") or [None] * len(clip["file_names"])
        binary = bool(clip.get("binary", False))
        for t, (image, label) in enumerate(zip(clip["file_names"], labels)):
            frame = {
                "file_name": image,
                "height": clip["height"],
                "width": clip["width"],
                "image_id": f"{clip_id}/{t}",
                "clip_id": clip_id,
                "frame_index": t,
            }
            if label is not None and cache_dir is not None:
                frame["sem_seg_file_name"] = index_label_file(
                    label, cache_dir, num_classes, binary=binary, ignore_label=ignore_label
                )
            elif label is not None:
                frame["sem_seg"] = read_label_map(
                    label, num_classes, binary=binary, ignore_label=ignore_label
                ).astype(np.uint8)
            yield frame


def register_frame_view(
    name: str, cache_dir: Optional[str] = None, view_name: Optional[str] = None
) -> str:
    """Register the frame view of the registered clip dataset ``name`` (default name
    ``<name>_frames``) with the clip dataset's metadata (but no ``evaluator_type``); return its
    name. Its labels are index PNGs in ``cache_dir`` (written when the view is loaded), or decoded
    in memory when ``cache_dir`` is None (a whole dataset's labels: mind the memory)."""
    if name not in DatasetCatalog.list():
        raise KeyError(f"dataset '{name}' is not registered, so it has no frame view")
    view_name = view_name or f"{name}_frames"
    metadata = MetadataCatalog.get(name)

    def load():
        return list(frame_dicts(DatasetCatalog.get(name), metadata, cache_dir=cache_dir))

    if view_name in DatasetCatalog.list():
        DatasetCatalog.remove(view_name)
        MetadataCatalog.remove(view_name)
    DatasetCatalog.register(view_name, load)
    fields = {k: v for k, v in metadata.as_dict().items() if k not in _NOT_INHERITED}
    MetadataCatalog.get(view_name).set(clip_dataset=name, **fields)
    return view_name
