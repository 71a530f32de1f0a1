"""Where the points go: oracle decomposition and object statistics of a model's predictions
(``tools/analyze_errors.py``; every quantity is defined in docs/ERROR_ANALYSIS.md).

Shape letters: Q queries, T frames of a clip, K classes of the vocabulary (label index = k + 1),
O ground-truth objects of a clip, h x w mask size, H x W resized frame, H0 x W0 original frame.

A *ground-truth object* is a class present in a clip's label maps (its mask over the annotated
frames); a *segment* is a query's mask above the model's mask threshold. Each oracle replaces one
decision of the model by the ground truth, keeps the rest, and is scored by the project's own
evaluator (``AVSSEvaluator``) on the same clips:

* ``names``: each segment takes the class of the ground-truth object it overlaps most (background,
  i.e. removed, when it overlaps none);
* ``sounding``: in each frame, a segment lying mostly (> 50 % of its pixels) on background or on a
  silent object (label 0) is removed;
* ``masks``: the ground-truth masks, each named by the model's class ensemble
  (``analysis_inference.name_ground_truth_masks``);
* ``names+sounding``: the first two together.

Statistics are kept per clip in small sums and lists (no prediction is kept), as in the evaluators.
"""

import logging
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from detectron2.data import MetadataCatalog

from ..data.labels import read_label_map
from ..modeling.meta_arch.inference import clip_level_scores, clip_results, frame_mask_logits
from ..modeling.meta_arch.postprocessing import select_instances
from . import avss_evaluation
from .clip_evaluator import channel_argmax
from .metrics import harmonic_mean

__all__ = [
    "ORACLES",
    "SIZE_BANDS",
    "ClipPrediction",
    "ErrorAnalysis",
    "ObjectRecord",
    "SUMMARY_KEYS",
    "annotated_labels",
    "bands_json",
    "size_band",
    "object_summary",
    "objects_by_size",
    "object_records_json",
    "Postprocess",
    "names_oracle_scores",
    "segment_overlaps",
    "sounding_oracle_scores",
]

ORACLES = ("model", "names", "sounding", "masks", "names+sounding")
SUMMARY_KEYS = ("mIoU", "mIoU_base", "mIoU_novel", "hIoU", "mIoU_frame", "F")
# object area as a share of the frame (mean over the frames it is in): [low, high); on AVSS-Synth v2
# val about a third of the objects falls in each band
SIZE_BANDS = (("small", 0.0, 0.02), ("medium", 0.02, 0.05), ("large", 0.05, float("inf")))
COVERED = 0.5  # an object is found when one segment covers at least this share of it
MOSTLY = 0.5  # a segment lies mostly on background when more than this share of it does


@dataclass
class Postprocess:
    """The model's post-processing settings (``clip_results``' arguments)."""

    top_k: int = 10
    score_threshold: float = 0.3
    mask_threshold: float = 0.5
    semantic_from: str = "masks"

    @classmethod
    def of(cls, model) -> "Postprocess":
        """The settings of an ``OVAVSS`` model."""
        return cls(model.top_k, model.score_threshold, model.mask_threshold, model.semantic_from)


@dataclass
class ClipPrediction:
    """What the model said about one clip, as the analysis keeps it."""

    scores: torch.Tensor  # (Q, K) or (Q, T, K) query class scores p_fg * p_cls
    mask_logits: torch.Tensor  # (Q, T, h, w)
    padded_size: Tuple[int, int]  # (Hp, Wp) of the model's input batch
    image_size: Tuple[int, int]  # (H, W) the resized frame
    output_size: Tuple[int, int]  # (H0, W0) the original frame
    # (O, K) or (O, T, K): the ensemble's class distribution of each ground-truth object's mask,
    # rows in the order of ``gt_ids`` (label indices); None: the masks oracle is not measured
    gt_probs: Optional[torch.Tensor] = None
    gt_ids: Sequence[int] = ()


@dataclass
class ObjectRecord:
    """One ground-truth object: how well the model found it and how the ensemble named it."""

    clip_id: str
    class_id: int  # label index
    group: str  # "base" / "novel" / "-"
    area: float  # mean share of the frame over the frames it is in
    size: str  # SIZE_BANDS name
    best_query_iou: float  # best mask IoU of any query (over the clip's annotated frames)
    found_by_instance: bool  # a kept instance (the model's output segments) covers >= COVERED
    found_by_query: bool  # any query's segment covers >= COVERED
    named: Optional[int] = None  # label index the ensemble gives its ground-truth mask
    conditions: Dict[str, str] = field(default_factory=dict)


def annotated_labels(clip: Dict, num_label_classes: int, ignore_label: int) -> Dict[int, Any]:
    """``{position in frame_indices: int64 (H0, W0) label}`` of the clip's annotated frames."""
    files = clip["sem_seg_file_names"]
    indices = clip.get("frame_indices", list(range(len(files))))
    return {
        i: read_label_map(files[t], num_label_classes, ignore_label=ignore_label)
        for i, t in enumerate(indices)
        if files[t] is not None
    }


def frame_masks(pred: ClipPrediction, t: int) -> torch.Tensor:
    """``(Q, H0, W0)`` mask probabilities of frame ``t`` at the original size (as the model)."""
    return frame_mask_logits(
        pred.mask_logits, t, pred.padded_size, pred.image_size, pred.output_size
    ).sigmoid()


def segment_overlaps(
    segments: torch.Tensor, label: np.ndarray, num_classes: int, ignore_label: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Pixels of each segment on each label class, and each segment's valid pixels.

    Args:
        segments: bool ``(Q, H0, W0)``; label: int ``(H0, W0)``.
    Returns:
        ``overlap`` int64 ``(Q, K+1)`` and ``pixels`` int64 ``(Q,)`` (ignore pixels left out).
    """
    valid = torch.from_numpy(label != ignore_label)
    index = torch.from_numpy(np.where(label == ignore_label, 0, label))
    onehot = F.one_hot(index[valid].long(), num_classes).double()  # (P, K+1)
    seg = segments.to("cpu")[:, valid].double()  # (Q, P)
    return (seg @ onehot).long().numpy(), seg.sum(1).long().numpy()


def names_oracle_scores(scores: torch.Tensor, overlap: np.ndarray) -> torch.Tensor:
    """Scores with each query's class replaced by its best-overlapping ground-truth class.

    Args:
        scores: ``(Q, K)`` or ``(Q, T, K)``; overlap: ``(Q, K+1)`` pixels summed over frames.
    Returns:
        the same shape: ``p_fg`` (``scores`` summed over K) on the query's class, 0 for a query
        that overlaps no ground-truth object.
    """
    num_classes = scores.shape[-1]
    objects = torch.from_numpy(overlap[:, 1:]).to(scores.device)  # (Q, K)
    onehot = F.one_hot(objects.argmax(1), num_classes).to(scores) * (objects.amax(1) > 0)[:, None]
    p_fg = scores.sum(-1, keepdim=True)
    return p_fg * (onehot if scores.dim() == 2 else onehot[:, None])


def sounding_oracle_scores(scores: torch.Tensor, keep: np.ndarray) -> torch.Tensor:
    """``(Q, T, K)`` per-frame scores, 0 where ``keep`` ``(Q, T)`` is False."""
    per_frame = scores if scores.dim() == 3 else scores[:, None].expand(-1, keep.shape[1], -1)
    return per_frame * torch.from_numpy(keep).to(scores)[..., None]


def _one_hot_map(pred: np.ndarray, num_channels: int) -> torch.Tensor:
    """Index map ``(H0, W0)`` -> ``(K+1, H0, W0)`` scores whose argmax is ``pred``."""
    return F.one_hot(torch.from_numpy(pred).long(), num_channels).permute(2, 0, 1).float()


def size_band(area: float, bands=SIZE_BANDS) -> str:
    """The name of the band ``(name, low, high)`` holding ``area``."""
    return next(name for name, low, high in bands if low <= area < high)


def bands_json(bands=SIZE_BANDS) -> List[list]:
    """``[[name, low, high or None (no upper end)], ...]``."""
    return [[name, low, None if np.isinf(high) else high] for name, low, high in bands]


class ErrorAnalysis:
    """Accumulates the oracle rows, object records, silent-pixel counts and condition groups.

    Example::

        analysis = ErrorAnalysis(dataset, Postprocess.of(model), lambda: build_evaluator(...))
        for clip, prediction in predictions:
            analysis.process(clip, prediction, silent_masks=None, conditions={"sources": "1"})
        summary = analysis.summarize()
    """

    def __init__(
        self,
        dataset_name: str,
        postprocess: Postprocess,
        make_evaluator: Callable[[], object],
        size_bands=SIZE_BANDS,
    ):
        """
        Args:
            dataset_name: a registered ``avss`` dataset (``stuff_classes``, ``base_ids``, ...).
            postprocess: the model's post-processing settings.
            make_evaluator: a fresh ``AVSSEvaluator`` of the dataset (the project's settings).
            size_bands: ``(name, low, high)`` object-size bands (share of the frame).
        """
        meta = MetadataCatalog.get(dataset_name)
        self.class_names = list(meta.stuff_classes)
        self.num_classes = len(self.class_names)
        self.base_ids = [int(i) for i in getattr(meta, "base_ids", [])]
        self.novel_ids = [int(i) for i in getattr(meta, "novel_ids", [])]
        self.ignore_label = int(getattr(meta, "ignore_label", 255))
        self.label_num_classes = int(getattr(meta, "label_num_classes", self.num_classes))
        self.postprocess = postprocess
        self.make_evaluator = make_evaluator
        self.size_bands = size_bands
        self.rows = {name: make_evaluator() for name in ORACLES}
        self.masks_measured = False
        # (condition, band) -> row -> the evaluator's statistics of the group's clips
        self.groups: Dict[Tuple[str, str], Dict[str, Dict]] = {}
        self.objects: List[ObjectRecord] = []
        self.silent = {"pixels": 0, "foreground": 0, "clips": 0, "recorded": False}
        self.fg = defaultdict(lambda: np.zeros(2, dtype=np.int64))  # group -> (inter, union)

    def group(self, cls_id: int) -> str:
        if cls_id in self.base_ids:
            return "base"
        return "novel" if cls_id in self.novel_ids else "-"

    def _add(self, name: str, clip: Dict, outputs: List[Dict], keys) -> None:
        """Feed a row's evaluator and add the clip's share of its sums to the clip's groups (the
        evaluator's statistics add up over clips, docs/METRICS.md section 4)."""
        evaluator = self.rows[name]
        before = {k: np.copy(v) for k, v in evaluator._stats.items()}
        evaluator.process([clip], [outputs])
        for key in keys:
            stats = self.groups.setdefault(key, {}).setdefault(name, evaluator._new_stats())
            for k, v in evaluator._stats.items():
                stats[k] = stats[k] + (v - before[k])

    def _results(self, pred: ClipPrediction, scores: torch.Tensor) -> List[Dict]:
        p = self.postprocess
        return clip_results(
            scores,
            pred.mask_logits,
            padded_size=pred.padded_size,
            image_size=pred.image_size,
            output_size=pred.output_size,
            top_k=p.top_k,
            score_threshold=p.score_threshold,
            mask_threshold=p.mask_threshold,
            semantic_from=p.semantic_from,
        )

    def process(
        self,
        clip: Dict,
        pred: ClipPrediction,
        silent_masks: Optional[np.ndarray] = None,
        conditions: Optional[Mapping[str, str]] = None,
    ) -> Dict[str, List[Dict]]:
        """Add one clip.

        Args:
            clip: the mapper dict (``sem_seg_file_names``, ``frame_indices``, ``clip_id``).
            pred: the model's prediction of the clip.
            silent_masks: bool ``(T, H0, W0)`` pixels of objects not sounding in each frame, or
                None where the dataset does not record them.
            conditions: condition name -> the clip's band (e.g. ``{"sources": "2"}``).
        Returns:
            the per-frame outputs of every row (oracle) given to the evaluators.
        """
        conditions = dict(conditions or {})
        labels = annotated_labels(clip, self.label_num_classes, self.ignore_label)
        num_frames = pred.mask_logits.shape[1]
        n = self.num_classes
        overlap = np.zeros((pred.mask_logits.shape[0], num_frames, n), dtype=np.int64)
        pixels = np.zeros(overlap.shape[:2], dtype=np.int64)
        for t, label in labels.items():
            segments = frame_masks(pred, t) > self.postprocess.mask_threshold
            overlap[:, t], pixels[:, t] = segment_overlaps(segments, label, n, self.ignore_label)
        # sounding oracle: drop a segment from a frame where it lies mostly on label 0
        keep = ~((pixels > 0) & (overlap[..., 0] > MOSTLY * pixels))
        names = names_oracle_scores(pred.scores, overlap.sum(1))
        outputs = {
            "model": self._results(pred, pred.scores),
            "names": self._results(pred, names),
            "sounding": self._results(pred, sounding_oracle_scores(pred.scores, keep)),
            "names+sounding": self._results(pred, sounding_oracle_scores(names, keep)),
        }
        if pred.gt_probs is not None:
            self.masks_measured = True
            outputs["masks"] = self._masks_oracle(pred, labels, num_frames)
        for name, out in outputs.items():
            self._add(name, clip, out, conditions.items())
        self._foreground(outputs["model"], labels, silent_masks, conditions)
        self._add_objects(clip, pred, labels, overlap, pixels, conditions)
        return outputs

    def _masks_oracle(self, pred: ClipPrediction, labels: Dict, num_frames: int) -> List[Dict]:
        """Per frame: each ground-truth object's pixels painted with the ensemble's name."""
        named = self._gt_names(pred)
        out = []
        for t in range(num_frames):
            label = labels.get(t)
            if label is None:
                blank = np.zeros(pred.output_size, dtype=np.int64)
                out.append({"sem_seg": _one_hot_map(blank, self.num_classes)})
                continue
            painted = np.zeros(label.shape, dtype=np.int64)
            for cls_id, name in named.items():
                painted[label == cls_id] = name[t] if isinstance(name, list) else name
            out.append({"sem_seg": _one_hot_map(painted, self.num_classes)})
        return out

    def _gt_names(self, pred: ClipPrediction) -> Dict[int, object]:
        """label index -> the named label index (a per-frame list for per-frame evidence)."""
        probs = pred.gt_probs
        if probs is None:
            return {}
        if probs.dim() == 3:
            return {c: (probs[o].argmax(-1) + 1).tolist() for o, c in enumerate(pred.gt_ids)}
        return {c: int(probs[o].argmax()) + 1 for o, c in enumerate(pred.gt_ids)}

    def _foreground(self, outputs, labels, silent_masks, conditions) -> None:
        """Silent pixels predicted foreground; binary foreground IoU per condition group."""
        if silent_masks is not None:
            self.silent["recorded"] = True
            self.silent["clips"] += 1
        for t, label in labels.items():
            valid = label != self.ignore_label
            fg = (channel_argmax(outputs[t]["sem_seg"]).cpu().numpy() != 0) & valid
            gt = (label != 0) & valid
            counts = np.array([(fg & gt).sum(), (fg | gt).sum()])
            self.fg[("all", "all")] += counts
            for key in conditions.items():
                self.fg[key] += counts
            if silent_masks is not None:
                silent = silent_masks[t] & valid
                self.silent["pixels"] += int(silent.sum())
                self.silent["foreground"] += int((silent & fg).sum())

    def _add_objects(self, clip, pred, labels, overlap, pixels, conditions) -> None:
        """One :class:`ObjectRecord` per class present in the clip's labels."""
        p = self.postprocess
        kept = set(
            select_instances(clip_level_scores(pred.scores), p.top_k, p.score_threshold)[0].tolist()
        )
        named = self._gt_names(pred)
        present = sorted({int(c) for lab in labels.values() for c in np.unique(lab)} - {0})
        for c in (c for c in present if c < self.num_classes):
            sizes = [
                (lab == c).sum() / max(1, (lab != self.ignore_label).sum())
                for lab in labels.values()
                if (lab == c).any()
            ]
            obj = sum(int((lab == c).sum()) for lab in labels.values())
            inter = overlap[:, :, c].sum(1)  # (Q,)
            iou = inter / np.maximum(pixels.sum(1) + obj - inter, 1)
            covered = inter >= COVERED * obj
            name = named.get(c)
            if isinstance(name, list):  # per-frame names: the most frequent one
                name = Counter(name).most_common(1)[0][0]
            area = float(np.mean(sizes))
            self.objects.append(
                ObjectRecord(
                    clip_id=str(clip.get("clip_id", "?")),
                    class_id=c,
                    group=self.group(c),
                    area=area,
                    size=size_band(area, self.size_bands),
                    best_query_iou=float(iou.max()) if len(iou) else 0.0,
                    found_by_instance=bool(any(covered[q] for q in kept)),
                    found_by_query=bool(covered.any()),
                    named=name,
                    conditions=dict(conditions),
                )
            )

    # -- summary ---------------------------------------------------------------------------------

    def summarize(self) -> Dict:
        """Everything the report prints (JSON-able; NaN where undefined)."""
        has_masks = self.masks_measured
        names = [n for n in ORACLES if has_masks or n != "masks"]
        rows = {name: self._row(self.rows[name]) for name in names}
        conditions = defaultdict(dict)
        for (cond, band), stats in sorted(self.groups.items()):
            objs = [o for o in self.objects if o.conditions.get(cond) == band]
            inter, union = self.fg[(cond, band)]
            conditions[cond][band] = {
                "clips": len({o.clip_id for o in objs}),
                "rows": {
                    n: self._row(
                        self.rows[n], stats[n] if n in stats else self.rows[n]._new_stats()
                    )
                    for n in names
                },
                "foreground_IoU": 100.0 * inter / union if union else float("nan"),
                "objects": object_summary(objs),
            }
        inter, union = self.fg[("all", "all")]
        return {
            "rows": rows,
            "objects": object_summary(self.objects),
            "objects_by_size": objects_by_size(self.objects, self.size_bands),
            "size_bands": bands_json(self.size_bands),
            "per_class": self._per_class(),
            "naming": self._naming() if has_masks else None,
            "silent": self._silent(),
            "foreground_IoU": 100.0 * inter / union if union else float("nan"),
            "conditions": dict(conditions),
        }

    @staticmethod
    def _row(evaluator, stats: Optional[Dict] = None) -> Dict[str, float]:
        """The evaluator's summary keys, of all its clips or of a group's ``stats`` (its
        per-class log tables silenced)."""
        log = logging.getLogger(avss_evaluation.__name__)
        level = log.level
        log.setLevel(logging.WARNING)
        try:
            if stats is None:
                results = evaluator.evaluate()["sem_seg"]
            else:
                results = evaluator._summarize(stats)
        finally:
            log.setLevel(level)
        return {k: float(results[k]) for k in SUMMARY_KEYS}

    def _per_class(self) -> Dict[str, Dict[str, object]]:
        out = {}
        for c in sorted({o.class_id for o in self.objects}):
            objs = [o for o in self.objects if o.class_id == c]
            named = [o.named for o in objs if o.named is not None]
            wrong = Counter(self.class_names[n] for n in named if n != c)
            out[self.class_names[c]] = {
                "group": self.group(c),
                **object_summary(objs)["all"],
                "wrong_names": wrong.most_common(3),
            }
        return out

    def _naming(self) -> Dict[str, float]:
        """Naming of ground-truth masks: accuracy and the base <-> novel confusion rates."""
        named = [o for o in self.objects if o.named is not None]
        base = [o for o in named if o.group == "base"]
        novel = [o for o in named if o.group == "novel"]
        acc_b = _mean([o.named == o.class_id for o in base])
        acc_n = _mean([o.named == o.class_id for o in novel])
        return {
            "accuracy": _mean([o.named == o.class_id for o in named]),
            "accuracy_base": acc_b,
            "accuracy_novel": acc_n,
            "accuracy_harmonic": harmonic_mean(acc_b, acc_n),
            "base_named_novel": _mean([self.group(o.named) == "novel" for o in base]),
            "novel_named_base": _mean([self.group(o.named) == "base" for o in novel]),
        }

    def _silent(self) -> Dict[str, object]:
        s = self.silent
        if not s["recorded"]:
            return {"measured": False, "share_foreground": float("nan"), "pixels": 0}
        share = s["foreground"] / s["pixels"] if s["pixels"] else float("nan")
        return {"measured": True, "share_foreground": share, "pixels": int(s["pixels"])}


def object_summary(objs: Sequence[ObjectRecord]) -> Dict[str, Dict[str, float]]:
    """Counts, recalls, mean best-query IoU and naming accuracy of objects: all, base, novel."""
    out = {}
    for group in ("all", "base", "novel"):
        sel = [o for o in objs if group == "all" or o.group == group]
        named = [o for o in sel if o.named is not None]
        out[group] = {
            "objects": len(sel),
            "recall": _mean([o.found_by_instance for o in sel]),
            "query_recall": _mean([o.found_by_query for o in sel]),
            "best_query_iou": _mean([o.best_query_iou for o in sel]),
            "named_right": _mean([o.named == o.class_id for o in named]),
        }
    return out


def objects_by_size(objs: Sequence[ObjectRecord], bands=SIZE_BANDS) -> Dict[str, Dict]:
    """:func:`object_summary` per size band (from each object's ``area``)."""
    return {
        name: object_summary([o for o in objs if low <= o.area < high]) for name, low, high in bands
    }


def _mean(values: Sequence) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def object_records_json(objects: Sequence[ObjectRecord]) -> List[Dict]:
    """The object records as JSON-able dicts."""
    return [asdict(o) for o in objects]
