"""AVSSEvaluator against hand-computed values (docs/METRICS.md)."""

import json
import math

import numpy as np
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.evaluation import inference_on_dataset, verify_results
from detectron2.utils import comm
from PIL import Image

from ovavss_d2.data.class_lists import palette
from ovavss_d2.evaluation import AVSSEvaluator

F_B2 = 0.3


def fb(p, r):
    """F-beta with beta^2 = 0.3."""
    return (1 + F_B2) * p * r / (F_B2 * p + r)


# Three annotated frames in two clips (classes: 0 bg, 1 cat, 2 dog base; 3 violin, 4 tabla novel).
LABEL_A = np.array([[0, 0, 1, 1], [0, 0, 1, 1]])
PRED_A = np.array([[0, 1, 1, 1], [0, 0, 1, 3]])  # a cat false positive on background; violin FP
LABEL_B = np.array([[0, 0, 0, 0], [3, 3, 0, 0]])
PRED_B = np.array([[0, 0, 0, 0], [3, 0, 0, 0]])
LABEL_C = np.array([[2, 2, 255, 0], [2, 2, 0, 0]])  # one ignore pixel ...
PRED_C = np.array([[2, 2, 4, 0], [2, 0, 0, 0]])  # ... predicted tabla: must not count
GARBAGE = np.full((2, 4), 2)  # prediction on the unannotated frame: must not count

# Confusion matrix (rows gt, cols pred): [0,0]=12 [0,1]=1 [1,1]=3 [1,3]=1 [2,2]=3 [2,0]=1
# [3,3]=1 [3,0]=1. IoU: bg 12/15, cat 3/5, dog 3/4, violin 1/3, tabla NaN (never present).
IOU = [12 / 15, 3 / 5, 3 / 4, 1 / 3]
MIOU_BASE, MIOU_NOVEL = (3 / 5 + 3 / 4) / 2, 1 / 3
# Per frame (IoU, F): A: bg (3/4, fb(1, 3/4)), cat (3/5, fb(3/4, 3/4)), violin (0, 0);
# B: bg (6/7, fb(6/7, 1)), violin (1/2, fb(1, 1/2)); C: bg (3/4, fb(3/4, 1)), dog (3/4, fb(1, 3/4)).
IOU_FRAME = [(3 / 4 + 6 / 7 + 3 / 4) / 3, 3 / 5, 3 / 4, (0 + 1 / 2) / 2]
F_FRAME = [
    (fb(1, 3 / 4) + fb(6 / 7, 1) + fb(3 / 4, 1)) / 3,
    fb(3 / 4, 3 / 4),
    fb(1, 3 / 4),
    (0 + fb(1, 1 / 2)) / 2,
]


def two_clips(datasets, helpers, device="cpu"):
    """(inputs, outputs) of the two clips above, the scores on ``device``; clip 2 has an
    unannotated first frame."""
    clip1 = datasets.clip([LABEL_A, LABEL_B])
    clip2 = datasets.clip([None, LABEL_C])
    out1 = [{"sem_seg": helpers.one_hot(p, 5).to(device)} for p in (PRED_A, PRED_B)]
    out2 = [{"sem_seg": helpers.one_hot(p, 5).to(device)} for p in (GARBAGE, PRED_C)]
    return [clip1, clip2], [out1, out2]


def test_hand_computed_values(datasets, helpers, tmp_path, device):
    """The model's outputs on ``device`` (a GPU's, as in training's evaluation) give the same
    numbers."""
    name = datasets.avss()
    evaluator = AVSSEvaluator(name, output_dir=str(tmp_path / "out"))
    res = helpers.run(evaluator, *two_clips(datasets, helpers, device), batch_size=2)

    expected = {
        "mIoU": np.mean(IOU),
        "mIoU_base": MIOU_BASE,
        "mIoU_novel": MIOU_NOVEL,
        "hIoU": 2 * MIOU_BASE * MIOU_NOVEL / (MIOU_BASE + MIOU_NOVEL),
        "mIoU_frame": np.mean(IOU_FRAME),
        "F": np.mean(F_FRAME),
        "F_base": (F_FRAME[1] + F_FRAME[2]) / 2,
        "F_novel": F_FRAME[3],
    }
    for key, value in expected.items():
        assert res[key] == pytest.approx(100 * value), key
    for cls, value in zip(["background", "cat", "dog", "violin"], IOU):
        assert res[f"IoU-{cls}"] == pytest.approx(100 * value)
    assert math.isnan(res["IoU-tabla"])  # never in ground truth nor prediction: NaN, not 0
    assert list(res)[:8] == list(expected)

    report = json.loads((tmp_path / "out" / "avss_evaluation.json").read_text())
    assert report["num_frames"] == 3
    per_class = report["per_class"]
    assert [c["group"] for c in per_class] == ["background", "base", "base", "novel", "novel"]
    assert [c["frames_present"] for c in per_class] == [3, 1, 1, 2, 0]
    for c, iou, f in zip(per_class, IOU_FRAME, F_FRAME):
        assert c["IoU_frame"] == pytest.approx(100 * iou)
        assert c["F_frame"] == pytest.approx(100 * f)
    assert per_class[4]["IoU"] is None  # NaN written as null
    assert np.array(report["confusion_matrix"]).sum() == 23  # 24 labelled pixels - 1 ignored


def test_background_false_positives_are_counted(datasets, helpers):
    name = datasets.avss()
    label = np.array([[0, 0, 1, 1]])
    pred = np.array([[1, 1, 1, 1]])  # the cat spills onto two background pixels
    res = helpers.run(
        AVSSEvaluator(name), [datasets.clip([label])], [[{"sem_seg": helpers.one_hot(pred, 5)}]], 1
    )
    # cat: inter 2, pred 4, label 2 -> IoU 1/2, P 1/2, R 1; bg: inter 0, label 2 -> IoU 0, F 0.
    assert res["mIoU_frame"] == pytest.approx(100 * (0 + 1 / 2) / 2)
    assert res["F"] == pytest.approx(100 * (0 + fb(1 / 2, 1)) / 2)
    assert res["F_base"] == pytest.approx(100 * fb(1 / 2, 1))


def test_batch_size_and_process_split_do_not_change_results(datasets, helpers):
    name = datasets.avss()
    inputs, outputs = two_clips(datasets, helpers)
    evaluator = AVSSEvaluator(name)
    # Exactly equal (NaN == NaN here): frames are summed in the same order either way.
    np.testing.assert_equal(
        helpers.run(evaluator, inputs, outputs, 1), helpers.run(evaluator, inputs, outputs, 2)
    )


def test_distributed_gather_sums_process_statistics(datasets, helpers, monkeypatch):
    name = datasets.avss()
    inputs, outputs = two_clips(datasets, helpers)
    single = helpers.run(AVSSEvaluator(name), inputs, outputs, 2)

    rank0, rank1 = AVSSEvaluator(name), AVSSEvaluator(name)
    rank0.process(inputs[:1], outputs[:1])
    rank1.process(inputs[1:], outputs[1:])
    monkeypatch.setattr(comm, "get_world_size", lambda: 2)
    monkeypatch.setattr(comm, "is_main_process", lambda: True)
    monkeypatch.setattr(comm, "gather", lambda data, dst=0: [data, rank1._stats])
    assert rank0.evaluate()["sem_seg"] == pytest.approx(single, nan_ok=True)
    monkeypatch.setattr(comm, "is_main_process", lambda: False)
    assert rank1.evaluate() is None


def test_reset_clears_statistics(datasets, helpers):
    """Statistics of an earlier run (a cat spilling onto background) are gone after reset()."""
    name = datasets.avss()
    evaluator = AVSSEvaluator(name)
    label, pred = np.array([[0, 0, 1, 1]]), np.array([[1, 1, 1, 1]])
    evaluator.process([datasets.clip([label])], [[{"sem_seg": helpers.one_hot(pred, 5)}]])
    evaluator.reset()
    evaluator.process(*two_clips(datasets, helpers))
    res = evaluator.evaluate()["sem_seg"]
    assert res["mIoU"] == pytest.approx(100 * np.mean(IOU))
    assert res["mIoU_frame"] == pytest.approx(100 * np.mean(IOU_FRAME))
    assert res["F"] == pytest.approx(100 * np.mean(F_FRAME))


def test_no_novel_class_present_gives_nan_novel_and_hiou(datasets, helpers):
    name = datasets.avss()
    label = np.array([[0, 1]])
    res = helpers.run(
        AVSSEvaluator(name), [datasets.clip([label])], [[{"sem_seg": helpers.one_hot(label, 5)}]], 1
    )
    assert res["mIoU"] == res["mIoU_base"] == res["mIoU_frame"] == res["F"] == pytest.approx(100)
    assert math.isnan(res["mIoU_novel"]) and math.isnan(res["hIoU"]) and math.isnan(res["F_novel"])


def test_gt_filter_to_metadata_classes(datasets, helpers):
    name = datasets.avss()
    label = np.array([[0, 1, 3, 3]])  # violin is in the label but not in the clip's metadata
    pred = np.array([[0, 1, 0, 0]])
    clip = datasets.clip([label], class_names=["cat"])
    outputs = [[{"sem_seg": helpers.one_hot(pred, 5)}]]
    unfiltered = helpers.run(AVSSEvaluator(name), [clip], outputs, 1)
    filtered = helpers.run(
        AVSSEvaluator(name, gt_filter_to_metadata_classes=True), [clip], outputs, 1
    )
    assert unfiltered["IoU-violin"] == 0 and unfiltered["IoU-background"] == pytest.approx(100 / 3)
    # Violin pixels become ignore: the prediction is then perfect.
    assert math.isnan(filtered["IoU-violin"]) and filtered["mIoU"] == pytest.approx(100)


def test_eval_size_resizes_label_and_prediction(datasets, helpers):
    name = datasets.avss()
    label = np.zeros((4, 4), dtype=np.int64)
    label[1, 1] = 1  # nearest sampling to 2x2 keeps rows/cols 1 and 3: the cat pixel survives
    pred = np.zeros((4, 4), dtype=np.int64)
    pred[0, 0] = 1  # a false positive that 2x2 sampling drops
    outputs = [[{"sem_seg": helpers.one_hot(pred, 5)}]]
    full = helpers.run(AVSSEvaluator(name), [datasets.clip([label])], outputs, 1)
    small = helpers.run(AVSSEvaluator(name, eval_size=2), [datasets.clip([label])], outputs, 1)
    assert full["IoU-cat"] == 0 and full["IoU-background"] == pytest.approx(100 * 14 / 16)
    assert small["IoU-cat"] == 0 and small["IoU-background"] == pytest.approx(100 * 3 / 4)


def test_errors(datasets, helpers):
    name = datasets.avss()
    label = np.zeros((2, 4), dtype=np.int64)
    clip = datasets.clip([label])
    evaluator = AVSSEvaluator(name)
    with pytest.raises(ValueError, match="differs from label size"):
        evaluator.process([clip], [[{"sem_seg": helpers.one_hot(np.zeros((4, 4), int), 5)}]])
    with pytest.raises(ValueError, match="3 channels"):
        evaluator.process([clip], [[{"sem_seg": helpers.one_hot(label, 3)}]])
    with pytest.raises(ValueError, match="2 frame outputs for 1 frame indices"):
        evaluator.process([clip], [[{"sem_seg": helpers.one_hot(label, 5)}] * 2])
    with pytest.raises(ValueError, match="stuff_classes"):
        AVSSEvaluator("test_avss_never_registered_dataset")


def test_paletted_and_index_label_files(datasets, helpers, tmp_path):
    """'P' PNGs (VOC palette) and 'L' PNGs hold class ids directly; 255 is ignored."""
    name = datasets.avss()
    label = np.array([[0, 1, 255, 3]], dtype=np.uint8)
    p_image = Image.fromarray(label, mode="P")
    p_image.putpalette(palette(256).tobytes())
    p_path, l_path = tmp_path / "p.png", tmp_path / "l.png"
    p_image.save(p_path)
    Image.fromarray(label, mode="L").save(l_path)
    pred = np.array([[0, 1, 2, 3]])
    for path in (p_path, l_path):
        clip = datasets.clip([label.astype(np.int64)])
        clip["sem_seg_file_names"] = [str(path)]
        res = helpers.run(AVSSEvaluator(name), [clip], [[{"sem_seg": helpers.one_hot(pred, 5)}]], 1)
        assert res["mIoU"] == pytest.approx(100) and math.isnan(res["IoU-dog"])


def test_inference_on_dataset_and_verify_results(datasets, helpers):
    """The evaluator runs under Detectron2's inference loop and its keys satisfy verify_results."""
    name = datasets.avss()
    inputs, outputs = two_clips(datasets, helpers)
    by_clip = {clip["clip_id"]: out for clip, out in zip(inputs, outputs)}

    class StubModel(torch.nn.Module):
        def forward(self, batch):
            return [by_clip[clip["clip_id"]] for clip in batch]

    results = inference_on_dataset(StubModel(), [[c] for c in inputs], AVSSEvaluator(name))
    cfg = get_cfg()
    cfg.TEST.EXPECTED_RESULTS = [["sem_seg", "hIoU", 100 * 0.45 / (0.675 + 1 / 3), 1e-6]]
    assert verify_results(cfg, results)
