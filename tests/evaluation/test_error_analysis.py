"""Error analysis: each oracle, the object records, naming rates, silent pixels and condition groups
on tiny hand-made predictions whose right answers are known; the model row against the evaluator.

Clips are 8 x 8 and 2 frames: a cat (base) in the top-left quarter, a violin (novel) in the
bottom-right one. Query masks are given as logits of +-10 at the original size (every size equal),
so a query's segment is exactly the mask written here.
"""

import numpy as np
import pytest
import torch

from ovavss_d2.evaluation import AVSSEvaluator
from ovavss_d2.evaluation.error_analysis import (
    ClipPrediction,
    ErrorAnalysis,
    Postprocess,
    names_oracle_scores,
    segment_overlaps,
)

CAT, DOG, VIOLIN, TABLA = 1, 2, 3, 4  # label indices of conftest's AVSS_CLASSES
H = W = 8
T = 2


def _label() -> np.ndarray:
    label = np.zeros((H, W), dtype=np.int64)
    label[:4, :4] = CAT
    label[4:, 4:] = VIOLIN
    return label


def _region(rows, cols) -> torch.Tensor:
    m = torch.zeros(H, W, dtype=torch.bool)
    m[rows, cols] = True
    return m


CAT_MASK = _region(slice(0, 4), slice(0, 4))
VIOLIN_MASK = _region(slice(4, 8), slice(4, 8))
EMPTY_CORNER = _region(slice(0, 4), slice(4, 8))  # background


def _prediction(masks, classes, p_fg, gt=None) -> ClipPrediction:
    """Queries with per-frame masks ``masks[q] = [(H, W) bool] * T`` and one-hot classes
    (label index) scored ``p_fg``; ``gt``: {label index: named label index} for the masks
    oracle."""
    logits = torch.stack([torch.stack(m) for m in masks]).float() * 20 - 10  # (Q, T, H, W)
    scores = torch.zeros(len(masks), 4)
    for q, (c, p) in enumerate(zip(classes, p_fg)):
        scores[q, c - 1] = p
    gt_probs, gt_ids = None, ()
    if gt is not None:
        gt_ids = sorted(gt)
        gt_probs = torch.nn.functional.one_hot(torch.tensor([gt[c] - 1 for c in gt_ids]), 4)
    return ClipPrediction(scores, logits, (H, W), (H, W), (H, W), gt_probs, gt_ids)


@pytest.fixture
def setup(datasets):
    name = datasets.avss()

    def make():
        return ErrorAnalysis(name, Postprocess(), lambda: AVSSEvaluator(name, distributed=False))

    return datasets, name, make


def test_segment_overlaps_counts_pixels_per_class():
    label = _label()
    label[0, 0] = 255  # ignored: counted nowhere
    overlap, pixels = segment_overlaps(torch.stack([CAT_MASK, EMPTY_CORNER]), label, 5, 255)
    assert overlap[0].tolist() == [0, 15, 0, 0, 0] and pixels[0] == 15
    assert overlap[1].tolist() == [16, 0, 0, 0, 0] and pixels[1] == 16


def test_names_oracle_scores_keep_p_fg_and_drop_unmatched_queries():
    scores = torch.tensor([[0.1, 0.5, 0.2, 0.0], [0.3, 0.3, 0.0, 0.0]])
    overlap = np.array([[9, 0, 0, 4, 0], [7, 0, 0, 0, 0]])  # query 1 overlaps no object
    out = names_oracle_scores(scores, overlap)
    assert torch.allclose(out, torch.tensor([[0.0, 0.0, 0.8, 0.0], [0.0, 0.0, 0.0, 0.0]]))


def test_names_oracle_on_perfect_masks_gives_100(setup):
    datasets, _, make = setup
    clip = datasets.clip([_label()] * T)
    pred = _prediction([[CAT_MASK] * T, [VIOLIN_MASK] * T], [DOG, TABLA], [0.9, 0.9])
    analysis = make()
    analysis.process(clip, pred)
    rows = analysis.summarize()["rows"]
    assert rows["model"]["hIoU"] == 0.0
    assert rows["names"]["hIoU"] == pytest.approx(100.0)
    assert rows["names"]["mIoU"] == pytest.approx(100.0)
    assert rows["sounding"]["hIoU"] == 0.0  # names stay wrong
    assert rows["names+sounding"]["hIoU"] == pytest.approx(100.0)
    assert "masks" not in rows  # no ground-truth naming given


def test_sounding_oracle_removes_segments_on_background_per_frame(setup):
    datasets, _, make = setup
    clip = datasets.clip([_label()] * T)
    # query 2: a false "dog" on background in frame 0, on the cat in frame 1 (kept there)
    pred = _prediction(
        [[CAT_MASK] * T, [VIOLIN_MASK] * T, [EMPTY_CORNER, CAT_MASK]],
        [CAT, VIOLIN, DOG],
        [0.9, 0.9, 0.95],
    )
    analysis = make()
    analysis.process(clip, pred)
    rows = analysis.summarize()["rows"]
    # model: dog is predicted on background (frame 0) and on the cat (frame 1, 0.95 > 0.9)
    assert rows["model"]["mIoU_base"] == pytest.approx(100 * (0.5 + 0.0) / 2)
    assert rows["model"]["hIoU"] < 100
    # sounding: frame 0's false segment is gone; in frame 1 dog still wins on the cat's pixels
    cat_iou = 16 / 32  # cat right in frame 0 only
    assert rows["sounding"]["mIoU_base"] == pytest.approx(100 * (cat_iou + 0.0) / 2)
    assert rows["sounding"]["mIoU_novel"] == pytest.approx(100.0)
    # names: query 2 overlaps the cat most -> named cat everywhere -> perfect in frame 1, and its
    # background segment in frame 0 is still there (names do not decide sounding)
    assert rows["names"]["mIoU_base"] == pytest.approx(100 * 32 / 48)
    assert rows["names+sounding"]["hIoU"] == pytest.approx(100.0)


def test_masks_oracle_paints_ground_truth_with_the_given_names(setup):
    datasets, _, make = setup
    clip = datasets.clip([_label()] * T)
    nothing = [[torch.zeros(H, W, dtype=torch.bool)] * T]
    right = make()
    right.process(clip, _prediction(nothing, [CAT], [0.9], gt={CAT: CAT, VIOLIN: VIOLIN}))
    assert right.summarize()["rows"]["masks"]["hIoU"] == pytest.approx(100.0)
    wrong = make()
    wrong.process(clip, _prediction(nothing, [CAT], [0.9], gt={CAT: CAT, VIOLIN: TABLA}))
    summary = wrong.summarize()
    assert summary["rows"]["masks"]["mIoU_base"] == pytest.approx(100.0)
    assert summary["rows"]["masks"]["hIoU"] == 0.0
    naming = summary["naming"]
    assert naming["accuracy_base"] == 1.0 and naming["accuracy_novel"] == 0.0
    assert naming["novel_named_base"] == 0.0  # tabla is novel too
    assert [tuple(w) for w in summary["per_class"]["violin"]["wrong_names"]] == [("tabla", 1)]


def test_object_records_recall_iou_size_and_base_named_novel(setup):
    datasets, _, make = setup
    clip = datasets.clip([_label()] * T)
    half_violin = _region(slice(4, 6), slice(4, 8))
    # the violin's query covers half of it but scores below the threshold (0.3): not kept
    pred = _prediction(
        [[CAT_MASK] * T, [half_violin] * T], [CAT, VIOLIN], [0.9, 0.2], gt={CAT: VIOLIN, VIOLIN: 3}
    )
    analysis = make()
    analysis.process(clip, pred)
    cat, violin = sorted(analysis.objects, key=lambda o: o.class_id)
    assert (cat.group, cat.best_query_iou, cat.found_by_instance, cat.size) == (
        "base",
        1.0,
        True,
        "large",  # 16 of 64 pixels
    )
    assert violin.best_query_iou == pytest.approx(0.5)
    assert violin.found_by_query and not violin.found_by_instance
    summary = analysis.summarize()
    assert summary["objects"]["novel"]["recall"] == 0.0
    assert summary["objects"]["novel"]["query_recall"] == 1.0
    assert summary["naming"]["base_named_novel"] == 1.0


def test_silent_pixels_predicted_foreground(setup):
    datasets, _, make = setup
    clip = datasets.clip([_label()] * T)
    silent = np.stack([EMPTY_CORNER.numpy()] * T)  # a silent object in the empty corner
    empty = torch.zeros(H, W, dtype=torch.bool)
    pred = _prediction([[CAT_MASK] * T, [EMPTY_CORNER, empty]], [CAT, DOG], [0.9, 0.9])
    measured = make()
    measured.process(clip, pred, silent_masks=silent)
    out = measured.summarize()["silent"]
    assert out["measured"] and out["share_foreground"] == pytest.approx(0.5)  # frame 0 only
    unmeasured = make()
    unmeasured.process(clip, pred)
    assert not unmeasured.summarize()["silent"]["measured"]


def test_condition_groups_equal_the_evaluator_on_their_clips(setup, helpers):
    datasets, name, make = setup
    analysis = make()
    clips, outs = [], []
    for i, (classes, band) in enumerate([((CAT, VIOLIN), "1"), ((DOG, TABLA), "2")]):
        clip = datasets.clip([_label()] * T)
        pred = _prediction([[CAT_MASK] * T, [VIOLIN_MASK] * T], classes, [0.9, 0.8])
        outs.append(analysis.process(clip, pred, conditions={"sources": band})["model"])
        clips.append(clip)
    summary = analysis.summarize()
    for i, band in enumerate(("1", "2")):
        alone = helpers.run(AVSSEvaluator(name, distributed=False), [clips[i]], [outs[i]], 1)
        got = summary["conditions"]["sources"][band]["rows"]["model"]
        for key in ("mIoU", "mIoU_base", "mIoU_novel", "hIoU", "F"):
            assert got[key] == pytest.approx(alone[key], nan_ok=True)
    both = helpers.run(AVSSEvaluator(name, distributed=False), clips, outs, 2)
    assert summary["rows"]["model"]["mIoU"] == pytest.approx(both["mIoU"])
