"""AVSBinaryEvaluator against hand-computed values (docs/METRICS.md)."""

import json
import math

import numpy as np
import pytest
import torch

from ovavss_d2.evaluation import AVSBinaryEvaluator
from ovavss_d2.evaluation.metrics import sweep_thresholds


def fb(p, r):
    return 1.3 * p * r / (0.3 * p + r)


# Labels use AVSBench-semantic palette colours; every class > 0 is "sounding".
GT_1 = np.array([[3, 3, 0, 0], [0, 0, 0, 0]])
PRED_1 = np.array([[0, 1, 1, 0], [0, 0, 0, 0]])  # J = 1/3, P = R = 1/2 -> F = 1/2
GT_2 = np.zeros((2, 4), dtype=np.int64)
PRED_2 = np.zeros((2, 4), dtype=np.int64)  # empty GT, empty prediction: J = 1, not in F
GT_3 = np.zeros((2, 4), dtype=np.int64)
PRED_3 = np.array([[2, 0, 0, 0], [0, 0, 0, 1]])  # empty GT, 2 of 8 pixels predicted: J = 6/8
GT_4 = np.array([[0, 0, 0, 0], [4, 4, 1, 1]])
PRED_4 = np.zeros((2, 4), dtype=np.int64)  # nothing predicted: J = 0, F = 0
MJ = (1 / 3 + 1 + 6 / 8 + 0) / 4
F = (1 / 2 + 0) / 2


def clips(datasets, helpers, num_channels=3, device="cpu"):
    """Clip 1: frames 1, 2; clip 2: frame 3, an unannotated frame, frame 4 (scores on
    ``device``)."""
    c1 = datasets.clip([GT_1, GT_2], binary=True)
    c2 = datasets.clip([GT_3, None, GT_4], binary=True)
    everything = np.ones((2, 4), dtype=np.int64)  # on the unannotated frame: must not count
    preds1, preds2 = (PRED_1, PRED_2), (PRED_3, everything, PRED_4)
    o1 = [{"sem_seg": helpers.one_hot(p, num_channels).to(device)} for p in preds1]
    o2 = [{"sem_seg": helpers.one_hot(p, num_channels).to(device)} for p in preds2]
    return [c1, c2], [o1, o2]


def test_hand_computed_mj_and_f(datasets, helpers, tmp_path, device):
    name = datasets.binary()
    evaluator = AVSBinaryEvaluator(name, output_dir=str(tmp_path))
    res = helpers.run(evaluator, *clips(datasets, helpers, device=device), batch_size=2)
    assert res == pytest.approx({"Mj": 100 * MJ, "F": 100 * F})
    report = json.loads((tmp_path / "avs_binary_evaluation.json").read_text())
    assert report["num_frames"] == 4 and report["num_empty_gt_frames"] == 2


def test_batch_size_independence(datasets, helpers):
    name = datasets.binary()
    inputs, outputs = clips(datasets, helpers)
    evaluator = AVSBinaryEvaluator(name, f_sweep=True)
    one_by_one = helpers.run(evaluator, inputs, outputs, 1)
    assert one_by_one == helpers.run(evaluator, inputs, outputs, 2)
    # Regrouping the same frames into different clips changes nothing either.
    single = datasets.clip([GT_1, GT_2, GT_3, GT_4], binary=True)
    frames = [o for clip_out in outputs for o in clip_out]
    del frames[3]  # the unannotated frame's output
    assert helpers.run(evaluator, [single], [frames], 1) == pytest.approx(one_by_one)


def test_reset_clears_statistics(datasets, helpers):
    """Frames of an earlier run (all wrong) are gone after reset()."""
    name = datasets.binary()
    evaluator = AVSBinaryEvaluator(name)
    wrong = datasets.clip([GT_1], binary=True)
    evaluator.process([wrong], [[{"sem_seg": helpers.one_hot(1 - (GT_1 > 0), 3)}]])
    evaluator.reset()
    evaluator.process(*clips(datasets, helpers))
    (res,) = evaluator.evaluate().values()
    assert res == pytest.approx({"Mj": 100 * MJ, "F": 100 * F})


def test_all_frames_empty_gt(datasets, helpers):
    name = datasets.binary()
    res = helpers.run(
        AVSBinaryEvaluator(name),
        [datasets.clip([GT_2], binary=True)],
        [[{"sem_seg": helpers.one_hot(PRED_2, 2)}]],
        1,
    )
    assert res["Mj"] == pytest.approx(100) and math.isnan(res["F"])


def test_ignore_pixels_left_out(datasets, helpers):
    name = datasets.binary()
    gt = np.array([[1, 255, 0, 0]])
    pred = np.array([[1, 1, 1, 0]])  # the prediction on the ignore pixel does not count
    res = helpers.run(
        AVSBinaryEvaluator(name),
        [datasets.clip([gt], binary=True)],
        [[{"sem_seg": helpers.one_hot(pred, 2)}]],
        1,
    )
    assert res == pytest.approx({"Mj": 100 / 2, "F": 100 * fb(1 / 2, 1)})


def test_f_sweep_matches_brute_force(datasets, helpers):
    """F_sweep = max over thresholds of the mean per-frame F curve of 1 - softmax(sem_seg)[0]."""
    name = datasets.binary()
    rng = np.random.default_rng(0)
    gts = [GT_1, GT_2, GT_4]
    logits = [torch.from_numpy(rng.normal(size=(2, 2, 4))).float() for _ in gts]
    clip = datasets.clip(gts, binary=True)
    res = helpers.run(
        AVSBinaryEvaluator(name, f_sweep=True), [clip], [[{"sem_seg": x} for x in logits]], 1
    )

    curves = []
    for gt, x in zip(gts, logits):
        fg = gt > 0
        if not fg.any():
            continue  # empty ground truth: not in F
        prob = torch.sigmoid(x[1] - x[0]).numpy()
        curve = []
        for t in sweep_thresholds(255):
            mask = prob >= t
            tp = (mask & fg).sum()
            p = tp / mask.sum() if mask.sum() else 0.0
            r = tp / fg.sum()
            curve.append(fb(p, r) if p + r > 0 else 0.0)
        curves.append(curve)
    assert res["F_sweep"] == pytest.approx(100 * np.max(np.mean(curves, axis=0)), rel=1e-5)
    # F is the curve at t ~ 0.5 (argmax of two channels), F_sweep its maximum.
    assert res["F"] <= res["F_sweep"] + 1e-9


def test_needs_two_channels(datasets):
    name = datasets.binary()
    clip = datasets.clip([GT_1], binary=True)
    with pytest.raises(ValueError, match="C >= 2"):
        AVSBinaryEvaluator(name).process([clip], [[{"sem_seg": torch.zeros(1, 2, 4)}]])
