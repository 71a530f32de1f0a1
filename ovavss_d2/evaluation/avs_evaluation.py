"""AVSBinaryEvaluator: binary audio-visual segmentation (AVSBench S4 / MS3), see docs/METRICS.md.

Shape letters: ``C`` output channels (background first), ``H0 x W0`` a frame's original size,
``N`` thresholds of the swept F-measure.
"""

import logging
import os
from typing import Any, Dict, Optional

import numpy as np
import torch
from detectron2.config import CfgNode
from detectron2.utils.logger import create_small_table

from .clip_evaluator import ClipFrameEvaluator, channel_argmax, write_json
from .metrics import binary_fmeasure, binary_jaccard, fmeasure_curve

logger = logging.getLogger(__name__)


class AVSBinaryEvaluator(ClipFrameEvaluator):
    """Mean Jaccard ``Mj`` and F-measure ``F`` of sounding-object masks, under ``"avs_binary"``.

    The predicted foreground is ``argmax(sem_seg) != 0`` (every non-background channel counts as
    "sounding"); the ground-truth foreground is every label pixel of a class > 0. Pixels with the
    ignore label are left out of every count.

    Keys (0-100): ``Mj`` (mean over annotated frames of the per-frame Jaccard; an empty
    ground-truth frame scores the fraction of pixels predicted background), ``F`` (mean over
    annotated frames with non-empty ground truth of the per-frame F-beta at the argmax
    prediction) and, with ``f_sweep``, ``F_sweep`` (AVSBench's threshold-swept F-measure: maximum
    over thresholds of the mean per-frame F-beta curve of ``1 - softmax(sem_seg)[0]``). Every
    mean is over frames, so results do not depend on batch size or on how frames are grouped
    into clips.
    """

    _task = "avs_binary"

    def __init__(
        self,
        dataset_name: str,
        *,
        distributed: bool = True,
        output_dir: Optional[str] = None,
        eval_size: int = 0,
        beta2: float = 0.3,
        f_sweep: bool = False,
        num_thresholds: int = 255,
    ):
        """
        Args:
            dataset_name: a registered dataset with ``stuff_classes`` in its metadata.
            distributed: sum the statistics of all processes on the main process.
            output_dir: where ``avs_binary_evaluation.json`` is written; None writes nothing.
            eval_size: if > 0, masks (and the foreground probability) are resized (nearest) to
                ``eval_size x eval_size`` before counting (AVSBench evaluates at 224).
            beta2: beta^2 of the F-measure.
            f_sweep: also report ``F_sweep``.
            num_thresholds: thresholds of the sweep, ``linspace(0, 1 - 1e-10, num_thresholds)``.
        """
        self._beta2 = float(beta2)
        self._f_sweep = bool(f_sweep)
        self._num_thresholds = int(num_thresholds)
        super().__init__(
            dataset_name,
            distributed=distributed,
            output_dir=output_dir,
            eval_size=eval_size,
            binary=True,
        )

    @classmethod
    def from_config(
        cls, cfg: CfgNode, dataset_name: str, output_dir: Optional[str] = None
    ) -> "AVSBinaryEvaluator":
        """Build from ``TEST.AVS.*`` (see ovavss_d2/config.py)."""
        return cls(
            dataset_name,
            output_dir=output_dir,
            eval_size=cfg.TEST.AVS.EVAL_SIZE,
            beta2=cfg.TEST.AVS.F_BETA2,
            f_sweep=cfg.TEST.AVS.F_SWEEP,
            num_thresholds=cfg.TEST.AVS.F_SWEEP_THRESHOLDS,
        )

    def _new_stats(self) -> Dict[str, Any]:
        return {
            "jaccard_sum": 0.0,  # sum over annotated frames of the per-frame Jaccard
            "num_frames": 0,  # annotated frames
            "f_sum": 0.0,  # sum over frames with non-empty ground truth of the per-frame F
            "num_f_frames": 0,  # frames with non-empty ground truth
            "f_curve_sum": np.zeros(self._num_thresholds, dtype=np.float64),  # F_sweep numerator
        }

    def _process_frame(self, scores: torch.Tensor, label: np.ndarray, clip: Dict) -> None:
        if scores.ndim != 3 or scores.shape[0] < 2:
            raise ValueError(
                f"binary evaluation needs sem_seg of shape (C >= 2, H, W) with channel 0 the "
                f"background, got {tuple(scores.shape)}"
            )
        pred = self._to_eval_size((channel_argmax(scores) != 0).cpu().numpy())
        label = self._to_eval_size(label)
        valid = label != self._ignore_label
        if not valid.any():
            return
        # Metrics run on the valid pixels only, flattened: (P,) with P = number of valid pixels.
        pred, gt = pred[valid], label[valid] == 1
        stats = self._stats
        stats["jaccard_sum"] += binary_jaccard(pred, gt)
        stats["num_frames"] += 1
        f = binary_fmeasure(pred, gt, self._beta2)
        if f is None:  # empty ground truth: the F-measure is undefined, the frame is not counted
            return
        stats["f_sum"] += f
        stats["num_f_frames"] += 1
        if self._f_sweep:
            # For two channels [0, z] this is sigmoid(z), the probability AVSBench thresholds.
            prob = 1.0 - torch.softmax(scores.float(), dim=0)[0]
            prob = self._to_eval_size(prob.cpu().numpy())[valid]
            stats["f_curve_sum"] += fmeasure_curve(prob, gt, self._beta2, self._num_thresholds)

    def _summarize(self, stats: Dict[str, Any]) -> Dict[str, float]:
        nan = float("nan")
        frames, f_frames = stats["num_frames"], stats["num_f_frames"]
        results = {
            "Mj": 100.0 * stats["jaccard_sum"] / frames if frames else nan,
            "F": 100.0 * stats["f_sum"] / f_frames if f_frames else nan,
        }
        if self._f_sweep:
            curve = stats["f_curve_sum"] / f_frames if f_frames else None
            results["F_sweep"] = 100.0 * float(curve.max()) if curve is not None else nan
        logger.info(
            "Binary AVS evaluation of '%s': %d annotated frames, %d with empty ground truth "
            "(in Mj, not in F)\n%s",
            self._dataset_name,
            frames,
            frames - f_frames,
            create_small_table(results),
        )
        if self._output_dir:
            payload = {
                "dataset": self._dataset_name,
                "num_frames": int(frames),
                "num_empty_gt_frames": int(frames - f_frames),
                "settings": {
                    "eval_size": self._eval_size,
                    "beta2": self._beta2,
                    "f_sweep": self._f_sweep,
                    "num_thresholds": self._num_thresholds,
                },
                "results": results,
            }
            write_json(os.path.join(self._output_dir, "avs_binary_evaluation.json"), payload)
        return results
