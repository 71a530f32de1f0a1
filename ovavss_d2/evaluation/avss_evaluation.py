"""AVSSEvaluator: audio-visual semantic segmentation with base / novel classes (docs/METRICS.md).

Shape letters: ``K+1`` classes of the dataset's class list, background at index 0; ``H0 x W0`` a
frame's original size.
"""

import logging
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from detectron2.config import CfgNode
from detectron2.data import MetadataCatalog
from detectron2.utils.logger import create_small_table
from tabulate import tabulate

from .clip_evaluator import ClipFrameEvaluator, channel_argmax, write_json
from .metrics import (
    confusion_matrix,
    frame_averaged_scores,
    frame_class_scores,
    gzsl_scores,
    nanmean_over,
)

logger = logging.getLogger(__name__)

SUMMARY_KEYS = (
    "mIoU",
    "mIoU_base",
    "mIoU_novel",
    "hIoU",
    "mIoU_frame",
    "F",
    "F_base",
    "F_novel",
)


class AVSSEvaluator(ClipFrameEvaluator):
    """GZSL confusion-matrix metrics and AVSBench per-frame metrics, reported under ``"sem_seg"``.

    Keys (0-100): ``mIoU``, ``mIoU_base``, ``mIoU_novel``, ``hIoU`` (one dataset-level confusion
    matrix), ``mIoU_frame``, ``F``, ``F_base``, ``F_novel`` (AVSBench per-frame metrics) and
    ``IoU-<class>`` for every class of ``stuff_classes`` (confusion matrix). NaN marks a metric
    with no class to average (e.g. ``mIoU_novel`` when no novel class is in ground truth or
    prediction). Memory stays bounded: only a ``(K+1, K+1)`` matrix and three ``(K+1,)`` vectors
    are kept, never predictions.
    """

    _task = "sem_seg"

    def __init__(
        self,
        dataset_name: str,
        *,
        distributed: bool = True,
        output_dir: Optional[str] = None,
        eval_size: int = 0,
        beta2: float = 0.3,
        gt_filter_to_metadata_classes: bool = False,
    ):
        """
        Args:
            dataset_name: a registered dataset whose metadata has ``stuff_classes`` (K+1 names,
                background first), ``base_ids`` / ``novel_ids`` (label indices) and
                ``ignore_label``.
            distributed: sum the statistics of all processes on the main process.
            output_dir: where ``avss_evaluation.json`` (per-class results and the confusion
                matrix) is written; None writes nothing.
            eval_size: if > 0, labels and argmax predictions are resized (nearest) to
                ``eval_size x eval_size`` before counting (the OV-AVSS reference uses 224).
            beta2: beta^2 of the per-frame F-measure.
            gt_filter_to_metadata_classes: set ground-truth pixels of classes that the clip's
                ``class_names`` do not name to the ignore label (background is always kept).
        """
        self._beta2 = float(beta2)
        self._gt_filter = bool(gt_filter_to_metadata_classes)
        super().__init__(
            dataset_name, distributed=distributed, output_dir=output_dir, eval_size=eval_size
        )
        meta = MetadataCatalog.get(dataset_name)
        self._base_ids = self._checked_ids(getattr(meta, "base_ids", []), "base_ids")
        self._novel_ids = self._checked_ids(getattr(meta, "novel_ids", []), "novel_ids")
        self._class_ids = {name: i for i, name in enumerate(self._class_names)}

    @classmethod
    def from_config(
        cls, cfg: CfgNode, dataset_name: str, output_dir: Optional[str] = None
    ) -> "AVSSEvaluator":
        """Build from ``TEST.AVSS.*`` (see ovavss_d2/config.py)."""
        return cls(
            dataset_name,
            output_dir=output_dir,
            eval_size=cfg.TEST.AVSS.EVAL_SIZE,
            beta2=cfg.TEST.AVSS.F_BETA2,
            gt_filter_to_metadata_classes=cfg.TEST.AVSS.GT_FILTER_TO_METADATA_CLASSES,
        )

    def _checked_ids(self, ids: Sequence[int], what: str) -> List[int]:
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 1 <= i < self._num_classes]
        if bad:
            raise ValueError(
                f"dataset '{self._dataset_name}': {what} {bad} are not class label indices "
                f"1..{self._num_classes - 1}"
            )
        return ids

    def _new_stats(self) -> Dict[str, Any]:
        n = self._num_classes
        return {
            "confusion": np.zeros((n, n), dtype=np.int64),  # dataset-level, rows = ground truth
            "frame_iou_sum": np.zeros(n, dtype=np.float64),  # sum over frames of per-frame IoU
            "frame_f_sum": np.zeros(n, dtype=np.float64),  # sum over frames of per-frame F
            "frame_count": np.zeros(n, dtype=np.int64),  # frames where the class is present
            "num_frames": 0,  # annotated frames evaluated
        }

    def _process_frame(self, scores: torch.Tensor, label: np.ndarray, clip: Dict) -> None:
        if scores.shape[0] != self._num_classes:
            raise ValueError(
                f"prediction has {scores.shape[0]} channels but dataset '{self._dataset_name}' "
                f"has {self._num_classes} classes (background included): set the model's "
                "vocabulary to the dataset's classes before evaluating"
            )
        pred = channel_argmax(scores).cpu().numpy()
        if self._gt_filter:
            label = self._filter_to_clip_classes(label, clip)
        label, pred = self._to_eval_size(label), self._to_eval_size(pred)
        conf = confusion_matrix(label, pred, self._num_classes, self._ignore_label)
        iou, f, present = frame_class_scores(conf, self._beta2)
        stats = self._stats
        stats["confusion"] += conf
        stats["frame_iou_sum"] += iou
        stats["frame_f_sum"] += f
        stats["frame_count"] += present
        stats["num_frames"] += 1

    def _filter_to_clip_classes(self, label: np.ndarray, clip: Dict) -> np.ndarray:
        """Ignore ground-truth pixels of classes the clip's metadata does not name."""
        keep = [0] + [
            self._class_ids[n] for n in clip.get("class_names", []) if n in self._class_ids
        ]
        drop = ~np.isin(label, keep) & (label != self._ignore_label)
        if drop.any():
            label = label.copy()
            label[drop] = self._ignore_label
        return label

    def _summarize(self, stats: Dict[str, Any]) -> Dict[str, float]:
        gzsl = gzsl_scores(stats["confusion"], self._base_ids, self._novel_ids)
        counts = stats["frame_count"]
        iou_frame, miou_frame = frame_averaged_scores(stats["frame_iou_sum"], counts)
        f_frame, f_all = frame_averaged_scores(stats["frame_f_sum"], counts)
        summary = {
            "mIoU": gzsl["mIoU"],
            "mIoU_base": gzsl["mIoU_base"],
            "mIoU_novel": gzsl["mIoU_novel"],
            "hIoU": gzsl["hIoU"],
            "mIoU_frame": miou_frame,
            "F": f_all,
            "F_base": nanmean_over(f_frame, self._base_ids),
            "F_novel": nanmean_over(f_frame, self._novel_ids),
        }
        results = {k: 100.0 * v for k, v in summary.items()}
        for name, value in zip(self._class_names, gzsl["iou"]):
            results[f"IoU-{name}"] = 100.0 * float(value)

        per_class = [
            {
                "id": i,
                "class": name,
                "group": self._group(i),
                "IoU": 100.0 * float(gzsl["iou"][i]),
                "IoU_frame": 100.0 * float(iou_frame[i]),
                "F_frame": 100.0 * float(f_frame[i]),
                "frames_present": int(counts[i]),
                "gt_pixels": int(stats["confusion"][i].sum()),
                "pred_pixels": int(stats["confusion"][:, i].sum()),
            }
            for i, name in enumerate(self._class_names)
        ]
        self._log(results, per_class, stats["num_frames"])
        if self._output_dir:
            self._write_json(results, per_class, stats)
        return results

    def _group(self, class_id: int) -> str:
        if class_id == 0:
            return "background"
        if class_id in self._base_ids:
            return "base"
        return "novel" if class_id in self._novel_ids else "-"

    def _log(self, results: Dict[str, float], per_class: List[Dict], num_frames: int) -> None:
        rows = [
            [
                c["id"],
                c["class"],
                c["group"],
                c["IoU"],
                c["IoU_frame"],
                c["F_frame"],
                c["frames_present"],
            ]
            for c in per_class
        ]
        headers = ["id", "class", "group", "IoU", "IoU_frame", "F_frame", "frames"]
        table = tabulate(rows, headers=headers, tablefmt="pipe", floatfmt=".2f", numalign="right")
        logger.info(
            "AVSS evaluation of '%s' (%d annotated frames), per class:\n%s",
            self._dataset_name,
            num_frames,
            table,
        )
        logger.info("AVSS summary:\n%s", create_small_table({k: results[k] for k in SUMMARY_KEYS}))

    def _write_json(self, results: Dict[str, float], per_class: List[Dict], stats: Dict) -> None:
        path = os.path.join(self._output_dir, "avss_evaluation.json")
        payload = {
            "dataset": self._dataset_name,
            "num_frames": int(stats["num_frames"]),
            "settings": {
                "eval_size": self._eval_size,
                "beta2": self._beta2,
                "gt_filter_to_metadata_classes": self._gt_filter,
            },
            "summary": {k: results[k] for k in SUMMARY_KEYS},
            "per_class": per_class,
            "confusion_matrix": stats["confusion"].tolist(),
        }
        write_json(path, payload)
