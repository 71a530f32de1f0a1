"""Pure metric functions of ovavss_d2.evaluation.metrics on hand-computed arrays."""

import math

import numpy as np
import pytest

from ovavss_d2.evaluation.metrics import (
    binary_fmeasure,
    binary_jaccard,
    confusion_matrix,
    f_beta,
    fmeasure_curve,
    frame_averaged_scores,
    frame_class_scores,
    gzsl_scores,
    harmonic_mean,
    nanmean_over,
    sweep_thresholds,
)


def test_confusion_matrix_skips_ignore():
    label = np.array([[0, 1], [2, 255]])
    pred = np.array([[0, 1], [1, 2]])
    conf = confusion_matrix(label, pred, 3, 255)
    np.testing.assert_array_equal(conf, [[1, 0, 0], [0, 1, 0], [0, 1, 0]])
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(np.array([[3]]), np.array([[0]]), 3, 255)


def test_gzsl_scores():
    conf = np.array([[4, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    s = gzsl_scores(conf, base_ids=[1], novel_ids=[2, 3])
    # bg 4/6, class 1 2/3, class 2 0 (missed), class 3 NaN (never present).
    np.testing.assert_allclose(s["iou"][:3], [4 / 6, 2 / 3, 0])
    assert math.isnan(s["iou"][3])
    assert s["mIoU"] == pytest.approx((4 / 6 + 2 / 3) / 3)
    assert s["mIoU_base"] == pytest.approx(2 / 3) and s["mIoU_novel"] == 0 and s["hIoU"] == 0


def test_harmonic_mean():
    assert harmonic_mean(0.5, 0.25) == pytest.approx(2 * 0.5 * 0.25 / 0.75)
    assert harmonic_mean(0.0, 0.0) == 0.0
    assert math.isnan(harmonic_mean(0.5, float("nan")))


def test_f_beta_nan_to_zero():
    np.testing.assert_allclose(f_beta([1.0, np.nan, 0.0], [0.5, 1.0, 0.0], 0.3), [0.8125, 0, 0])


def test_frame_class_scores_and_averaging():
    # gt row, pred column: bg 2 correct + 1 predicted as class 1; class 1 one correct.
    conf = np.array([[2, 1, 0], [0, 1, 0], [0, 0, 0]])
    iou, f, present = frame_class_scores(conf, 0.3)
    np.testing.assert_allclose(iou, [2 / 3, 1 / 2, 0])
    np.testing.assert_allclose(f, [1.3 * (2 / 3) / (0.3 + 2 / 3), 1.3 * 0.5 / (0.15 + 1), 0])
    np.testing.assert_array_equal(present, [True, True, False])
    per_class, mean = frame_averaged_scores(np.array([1.5, 0.5, 0.0]), np.array([2, 1, 0]))
    np.testing.assert_allclose(per_class[:2], [0.75, 0.5])
    assert math.isnan(per_class[2]) and mean == pytest.approx(0.625)


def test_binary_jaccard_empty_ground_truth():
    gt = np.zeros((2, 2), bool)
    assert binary_jaccard(np.zeros((2, 2), bool), gt) == 1.0
    assert binary_jaccard(np.array([[1, 0], [0, 0]], bool), gt) == 0.75
    assert (
        binary_jaccard(np.array([[1, 1], [0, 0]], bool), np.array([[1, 0], [0, 1]], bool)) == 1 / 3
    )


def test_binary_fmeasure():
    gt = np.array([[1, 1], [0, 0]], bool)
    assert binary_fmeasure(np.zeros((2, 2), bool), np.zeros((2, 2), bool), 0.3) is None
    assert binary_fmeasure(np.zeros((2, 2), bool), gt, 0.3) == 0.0
    assert binary_fmeasure(np.array([[1, 0], [1, 0]], bool), gt, 0.3) == pytest.approx(0.5)


def test_fmeasure_curve_hand_computed():
    score = np.array([[0.1, 0.6], [0.9, 0.3]])
    gt = np.array([[0, 1], [1, 0]], bool)
    # thresholds 0, .25, .5, .75, ~1: predicted sets {all}, {.3,.6,.9}, {.6,.9}, {.9}, {}.
    expected = [1.3 * 0.5 / 1.15, 1.3 * (2 / 3) / 1.2, 1.0, 0.8125, 0.0]
    np.testing.assert_allclose(fmeasure_curve(score, gt, 0.3, 5), expected)


# -- from test_metrics_edges.py: Edges of the metric functions that the evaluator tests do not
# reach (from mutation testing, docs/TESTING.md): value ranges, equal inputs, class subsets, the
# threshold sweep's ends.


def test_confusion_matrix_value_checks():
    label = np.array([[0, 1, 255]])
    conf = confusion_matrix(label, np.array([[2, 1, 7]]), 3, 255)  # the ignored pixel's 7: unread
    assert conf.tolist() == [[0, 0, 1], [0, 1, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match=r"^predicted values outside \[0, 3\)$"):
        confusion_matrix(label, np.array([[0, 3, 0]]), 3, 255)  # K+1 itself
    with pytest.raises(ValueError, match=r"^predicted values outside \[0, 3\)$"):
        confusion_matrix(label, np.array([[-1, 0, 0]]), 3, 255)  # negative, maximum in range
    with pytest.raises(ValueError, match=r"^label values outside \[0, 3\) and not 255$"):
        confusion_matrix(np.array([[3, 0, 0]]), np.zeros((1, 3), int), 3, 255)
    with pytest.raises(ValueError, match=r"^label \(1, 3\) and prediction \(3,\) differ in shape$"):
        confusion_matrix(label, np.zeros(3, int), 3, 255)


def test_harmonic_mean_edges():
    assert harmonic_mean(0.5, 0.5) == 0.5  # equal means: b - n == 0 must not read as b + n == 0
    assert harmonic_mean(0.2, 0.6) == pytest.approx(0.3)
    assert harmonic_mean(0.0, 0.0) == 0.0
    assert math.isnan(harmonic_mean(float("nan"), 0.5))


def test_nanmean_over_subsets():
    values = np.array([1.0, np.nan, 3.0, 5.0])
    assert nanmean_over(values) == 3.0
    assert nanmean_over(values, [1, 2]) == 3.0
    assert math.isnan(nanmean_over(values, []))  # e.g. a dataset without novel classes
    assert math.isnan(nanmean_over(values, [1]))


def test_frame_averaged_scores_over_a_class_subset():
    per_class, mean = frame_averaged_scores(np.array([2.0, 1.5, 0.0]), np.array([2, 3, 0]), [1])
    np.testing.assert_allclose(per_class, [1.0, 0.5, np.nan])
    assert mean == 0.5  # class 1 only; over every class it would be 0.75
    _, mean_all = frame_averaged_scores(np.array([2.0, 0.5, 0.0]), np.array([2, 1, 0]))
    assert mean_all == 0.75


def test_threshold_sweep_ends():
    t = sweep_thresholds(255)
    assert t.shape == (255,) and t[0] == 0.0 and 1.0 - 1e-9 < t[-1] < 1.0
    gt = np.array([True, True, False])
    # a score of exactly 1 is foreground at every threshold, the last one included
    curve = fmeasure_curve(np.array([1.0, 1.0, 0.0]), gt, 0.3)
    assert curve.shape == (255,)  # AVSBench's 255 thresholds by default
    np.testing.assert_allclose(curve[1:], 1.0)
    # at threshold 0 a score of 0 is foreground too (score >= t): P = 2/3, R = 1
    assert curve[0] == pytest.approx(1.3 * (2 / 3) / (0.3 * (2 / 3) + 1))
