"""What both evaluators share: pairing frames with labels, resizing, gathering, JSON reports.

Shape letters: ``K+1`` output channels (background first), ``H0 x W0`` a frame's original size.
"""

import json
import logging
import math
import os
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm
from detectron2.utils.file_io import PathManager

from ..data.labels import read_label_map

logger = logging.getLogger(__name__)


def resize_nearest(array: np.ndarray, size: int) -> np.ndarray:
    """Resize ``(H, W)`` to ``(size, size)`` by nearest neighbour, sampling pixel centres.

    Output pixel ``i`` takes input pixel ``floor((i + 0.5) * H / size)`` (the same along W).
    """
    h, w = array.shape
    rows = np.minimum(((np.arange(size) + 0.5) * h / size).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(size) + 0.5) * w / size).astype(np.int64), w - 1)
    return array[rows[:, None], cols[None, :]]


def write_json(path: str, payload: Dict[str, Any]) -> None:
    """Write ``payload`` as strict JSON: NaN (undefined metrics) becomes ``null``."""

    def strict(value):
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {k: strict(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [strict(v) for v in value]
        return value

    PathManager.mkdirs(os.path.dirname(path) or ".")
    with PathManager.open(path, "w") as f:
        json.dump(strict(payload), f, indent=1, allow_nan=False)
    logger.info("Wrote %s", path)


def channel_argmax(scores: torch.Tensor) -> torch.Tensor:
    """``(C, H, W) -> (H, W)`` index of the largest channel, the first on ties (as ``argmax(0)``).

    A running maximum over the C channels: on a CPU, PyTorch's reduction over the outermost
    dimension of a contiguous map is about 100x slower than C element-wise passes.
    """
    best = scores[0].clone()
    index = torch.zeros(scores.shape[1:], dtype=torch.long, device=scores.device)
    for c in range(1, scores.shape[0]):
        better = scores[c] > best
        best = torch.where(better, scores[c], best)
        index[better] = c
    return index


class ClipFrameEvaluator(DatasetEvaluator):
    """Base of the clip evaluators: pairs each evaluated frame's prediction with its label.

    Subclasses set ``_task`` and implement ``_new_stats()``, ``_process_frame(...)`` and
    ``_summarize(stats)``; statistics are a dict of NumPy arrays and numbers that add up.
    """

    _task = ""

    def __init__(
        self,
        dataset_name: str,
        *,
        distributed: bool = True,
        output_dir: Optional[str] = None,
        eval_size: int = 0,
        binary: bool = False,
    ):
        self._dataset_name = dataset_name
        self._distributed = distributed
        self._output_dir = output_dir
        self._eval_size = int(eval_size)
        self._binary = binary
        meta = MetadataCatalog.get(dataset_name)
        classes = getattr(meta, "stuff_classes", None)
        if not classes or len(classes) < 2:
            raise ValueError(
                f"dataset '{dataset_name}' has no 'stuff_classes' (background + classes) in its "
                "metadata; register it with ovavss_d2.data before evaluating"
            )
        self._class_names: List[str] = list(classes)
        self._num_classes = len(self._class_names)
        self._ignore_label = int(getattr(meta, "ignore_label", 255))
        # Palette entries of the label files: K+1 of the class list, also for binary datasets.
        self._label_num_classes = int(getattr(meta, "label_num_classes", self._num_classes))
        self._stats: Dict[str, Any] = {}
        self.reset()

    def reset(self) -> None:
        self._stats = self._new_stats()

    def _new_stats(self) -> Dict[str, Any]:
        raise NotImplementedError

    def _process_frame(self, scores: torch.Tensor, label: np.ndarray, clip: Dict) -> None:
        """Add one annotated frame: ``scores`` ``(K+1, H0, W0)`` and ``label`` ``(H0, W0)``."""
        raise NotImplementedError

    def _summarize(self, stats: Dict[str, Any]) -> Dict[str, float]:
        raise NotImplementedError

    def process(self, inputs: List[Dict], outputs: List[List[Dict[str, torch.Tensor]]]) -> None:
        """Accumulate statistics of every annotated frame of a batch of clips.

        Args:
            inputs: mapper dicts, one per clip (``sem_seg_file_names``, ``frame_indices``, ...).
            outputs: per clip, one ``{"sem_seg": (K+1, H0, W0)}`` dict per entry of
                ``frame_indices``.
        """
        for clip, frames in zip(inputs, outputs):
            for scores, label in self._annotated_frames(clip, frames):
                self._process_frame(scores, label, clip)

    def _annotated_frames(self, clip: Dict, frames: List[Dict]) -> Iterator[Tuple[Any, Any]]:
        """Yield ``(scores, label)`` of frames with a label file, skipping unannotated ones."""
        label_files = clip["sem_seg_file_names"]
        frame_indices = clip.get("frame_indices", list(range(len(label_files))))
        clip_id = clip.get("clip_id", clip.get("file_names", ["?"])[0])
        if len(frames) != len(frame_indices):
            raise ValueError(
                f"clip {clip_id}: the model returned {len(frames)} frame outputs for "
                f"{len(frame_indices)} frame indices"
            )
        for t, frame in zip(frame_indices, frames):
            path = label_files[t]
            if path is None:
                continue
            scores = frame["sem_seg"]
            label = read_label_map(
                path,
                self._label_num_classes,
                binary=self._binary,
                ignore_label=self._ignore_label,
            )
            if tuple(scores.shape[-2:]) != label.shape:
                raise ValueError(
                    f"clip {clip_id} frame {t}: prediction size {tuple(scores.shape[-2:])} differs "
                    f"from label size {label.shape} ({path}); the model must return sem_seg at the "
                    "frame's original size"
                )
            yield scores, label

    def _to_eval_size(self, array: np.ndarray) -> np.ndarray:
        """Nearest-neighbour resize to ``eval_size x eval_size`` (no-op when ``eval_size`` is 0)."""
        return resize_nearest(array, self._eval_size) if self._eval_size > 0 else array

    def _gathered_stats(self) -> Optional[Dict[str, Any]]:
        """Sum the statistics of all processes on the main one (None elsewhere)."""
        if not self._distributed or comm.get_world_size() == 1:
            return self._stats
        all_stats = comm.gather(self._stats, dst=0)
        if not comm.is_main_process():
            return None
        total = self._new_stats()
        for stats in all_stats:
            for key in total:
                total[key] = total[key] + stats[key]
        return total

    def evaluate(self) -> Optional[Dict[str, Dict[str, float]]]:
        """Reduce the statistics over processes and return ``{task: {metric: value (0-100)}}``."""
        stats = self._gathered_stats()
        if stats is None:
            return None
        return {self._task: self._summarize(stats)}
