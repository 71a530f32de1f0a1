"""Pure metric functions of ovavss_d2.evaluation.metrics on hand-computed arrays."""

import math

import numpy as np
import pytest
from detectron2.config import get_cfg

from ovavss_d2 import add_ovavss_config
from ovavss_d2.evaluation import AVSBinaryEvaluator, AVSSEvaluator, build_evaluator
from ovavss_d2.evaluation.clip_evaluator import resize_nearest
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


def test_resize_nearest_samples_pixel_centres():
    array = np.arange(16).reshape(4, 4)
    np.testing.assert_array_equal(resize_nearest(array, 2), [[5, 7], [13, 15]])
    np.testing.assert_array_equal(resize_nearest(np.array([[1, 2]]), 4), [[1, 1, 2, 2]] * 4)


def test_build_evaluator_picks_by_evaluator_type(datasets):
    cfg = get_cfg()
    add_ovavss_config(cfg)
    cfg.TEST.AVS.F_SWEEP = True
    assert isinstance(build_evaluator(cfg, datasets.avss()), AVSSEvaluator)
    binary = build_evaluator(cfg, datasets.binary())
    assert isinstance(binary, AVSBinaryEvaluator) and binary._f_sweep
    other = datasets.avss(evaluator_type="coco")
    with pytest.raises(NotImplementedError, match="coco"):
        build_evaluator(cfg, other)
