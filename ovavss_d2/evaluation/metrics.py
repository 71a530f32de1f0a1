"""Pure NumPy metric functions behind the evaluators; docs/METRICS.md gives the definitions.

Shape letters: ``K+1`` classes including background at index 0, ``H x W`` a label map, ``N`` the
number of thresholds of an F-measure curve. Every function returns fractions in [0, 1] (or NaN
where a quantity is undefined); the evaluators scale to 0-100.
"""

from typing import Dict, Optional, Sequence, Tuple

import numpy as np


def confusion_matrix(
    label: np.ndarray, pred: np.ndarray, num_classes: int, ignore_label: int
) -> np.ndarray:
    """Pixel confusion matrix of one label map.

    Args:
        label: int ``(H, W)`` ground-truth indices in ``[0, num_classes)`` or ``ignore_label``.
        pred: int ``(H, W)`` predicted indices in ``[0, num_classes)``.
        num_classes: K+1.
        ignore_label: label value whose pixels are left out.

    Returns:
        int64 ``(K+1, K+1)``; entry ``[g, p]`` counts pixels of ground truth ``g`` predicted ``p``.
    """
    if label.shape != pred.shape:
        raise ValueError(f"label {label.shape} and prediction {pred.shape} differ in shape")
    valid = label != ignore_label
    label = label[valid].astype(np.int64)
    pred = pred[valid].astype(np.int64)
    if label.size and (label.min() < 0 or label.max() >= num_classes):
        raise ValueError(f"label values outside [0, {num_classes}) and not {ignore_label}")
    if pred.size and (pred.min() < 0 or pred.max() >= num_classes):
        raise ValueError(f"predicted values outside [0, {num_classes})")
    counts = np.bincount(label * num_classes + pred, minlength=num_classes**2)
    return counts.reshape(num_classes, num_classes)


def iou_from_confusion(conf: np.ndarray) -> np.ndarray:
    """Per-class IoU ``TP / (TP + FP + FN)`` of a ``(K+1, K+1)`` matrix; NaN where union is 0."""
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def f_beta(precision: np.ndarray, recall: np.ndarray, beta2: float) -> np.ndarray:
    """``(1 + b2) P R / (b2 P + R)`` elementwise, with NaN (0/0 or undefined P, R) -> 0."""
    precision = np.asarray(precision, dtype=np.float64)
    recall = np.asarray(recall, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (1 + beta2) * precision * recall / (beta2 * precision + recall)
    return np.nan_to_num(f, nan=0.0)


def nanmean_over(values: np.ndarray, ids: Optional[Sequence[int]] = None) -> float:
    """Mean of ``values[ids]`` (all if ``ids`` is None) ignoring NaN; NaN if none is finite."""
    selected = values if ids is None else values[np.asarray(list(ids), dtype=np.int64)]
    selected = selected[~np.isnan(selected)]
    return float(selected.mean()) if selected.size else float("nan")


def harmonic_mean(base: float, novel: float) -> float:
    """``2 b n / (b + n)``; 0 when ``b + n == 0``; NaN when either mean is undefined (NaN)."""
    if np.isnan(base) or np.isnan(novel):
        return float("nan")
    if base + novel == 0:
        return 0.0
    return 2.0 * base * novel / (base + novel)


def gzsl_scores(
    conf: np.ndarray, base_ids: Sequence[int], novel_ids: Sequence[int]
) -> Dict[str, object]:
    """GZSL confusion-matrix metrics of a dataset-level ``(K+1, K+1)`` matrix.

    Returns:
        dict with ``iou`` (``(K+1,)`` per-class IoU, NaN for classes with empty union), ``mIoU``
        (nanmean over all K+1 classes, background included), ``mIoU_base`` / ``mIoU_novel``
        (nanmean over those label indices; background belongs to neither) and ``hIoU``.
    """
    iou = iou_from_confusion(conf)
    base, novel = nanmean_over(iou, base_ids), nanmean_over(iou, novel_ids)
    return {
        "iou": iou,
        "mIoU": nanmean_over(iou),
        "mIoU_base": base,
        "mIoU_novel": novel,
        "hIoU": harmonic_mean(base, novel),
    }


def frame_class_scores(conf: np.ndarray, beta2: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AVSBench per-frame, per-class IoU and F of one frame's ``(K+1, K+1)`` confusion matrix.

    Returns:
        ``iou`` ``(K+1,)`` (0 where the class is absent from both maps), ``f`` ``(K+1,)``
        (F-beta of the class's precision and recall, NaN -> 0) and ``present`` bool ``(K+1,)``
        (union > 0: the class is in the ground truth or the prediction of this frame).
    """
    inter = np.diag(conf).astype(np.float64)
    area_pred = conf.sum(0).astype(np.float64)
    area_label = conf.sum(1).astype(np.float64)
    union = area_pred + area_label - inter
    present = union > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(present, inter / union, 0.0)
        f = f_beta(inter / area_pred, inter / area_label, beta2)
    return iou, f, present


def frame_averaged_scores(
    sums: np.ndarray, counts: np.ndarray, ids: Optional[Sequence[int]] = None
) -> Tuple[np.ndarray, float]:
    """Per-class mean over the frames where each class is present, then mean over classes.

    Args:
        sums: ``(K+1,)`` per-class sum of per-frame scores.
        counts: ``(K+1,)`` number of frames where the class is present.
        ids: classes entering the mean over classes (all if None); classes never present are
            left out (NaN), not counted as 0.

    Returns:
        per-class means ``(K+1,)`` (NaN for classes never present) and their mean over ``ids``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        per_class = np.where(counts > 0, sums / counts, np.nan)
    return per_class, nanmean_over(per_class, ids)


def binary_jaccard(pred: np.ndarray, gt: np.ndarray) -> float:
    """Jaccard index of two boolean foreground masks of one shape, with AVSBench's empty-GT rule.

    A frame whose ground truth is empty scores the fraction of its pixels predicted background
    (the background Jaccard): 1 for an empty prediction, less the more foreground is predicted.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    if not gt.any():
        return float((~pred).sum()) / pred.size
    return float(np.logical_and(pred, gt).sum()) / float(np.logical_or(pred, gt).sum())


def binary_fmeasure(pred: np.ndarray, gt: np.ndarray, beta2: float) -> Optional[float]:
    """F-beta of a boolean foreground mask against ``gt`` (same shape); None when ``gt`` is empty.

    An empty prediction on a non-empty ground truth has undefined precision and scores 0.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    positives = int(gt.sum())
    if positives == 0:
        return None
    tp = float(np.logical_and(pred, gt).sum())
    predicted = float(pred.sum())
    precision = tp / predicted if predicted else np.nan
    return float(f_beta(precision, tp / positives, beta2))


def sweep_thresholds(num_thresholds: int) -> np.ndarray:
    """AVSBench's thresholds ``linspace(0, 1 - 1e-10, N)`` (float64 ``(N,)``)."""
    return np.linspace(0.0, 1.0 - 1e-10, num_thresholds)


def fmeasure_curve(score: np.ndarray, gt: np.ndarray, beta2: float, num_thresholds: int = 255):
    """F-beta of ``score >= t`` for AVSBench's ``N`` thresholds ``t`` (see ``sweep_thresholds``).

    Args:
        score: float foreground probability in [0, 1], any shape (e.g. ``(H, W)``).
        gt: bool foreground mask of the same shape (must not be empty).

    Returns:
        float64 ``(N,)``; entry ``i`` is the F-beta of the mask ``score >= thresholds[i]``.
    """
    if score.shape != gt.shape:
        raise ValueError(f"score {score.shape} and ground truth {gt.shape} differ in shape")
    thresholds = sweep_thresholds(num_thresholds)
    # Pixel with score s is foreground at threshold i iff thresholds[i] <= s, i.e. i < rank(s).
    rank = np.searchsorted(thresholds, score.astype(np.float64).ravel(), side="right")
    fg = gt.ravel().astype(bool)
    # Reverse cumulative histograms: count of pixels with rank > i, for every i.
    pred_count = np.cumsum(np.bincount(rank, minlength=num_thresholds + 1)[::-1])[::-1][1:]
    tp = np.cumsum(np.bincount(rank[fg], minlength=num_thresholds + 1)[::-1])[::-1][1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        return f_beta(tp / pred_count, tp / fg.sum(), beta2)
