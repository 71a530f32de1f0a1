"""The evaluators' JSON reports, config keys, metadata defaults and frame pairing, hand-computed.

Written for the mutants that tests/evaluation left alive (docs/TESTING.md): each test pins a field
or a setting whose loss the value tests could not see. Also: build_evaluator's pick.
"""

import json
import math
import uuid

import numpy as np
import pytest
from detectron2.config import get_cfg
from PIL import Image

from ovavss_d2 import add_ovavss_config
from ovavss_d2.data.class_lists import palette
from ovavss_d2.evaluation import AVSBinaryEvaluator, AVSSEvaluator, build_evaluator

AVSS_CLASSES = ["background", "cat", "dog", "violin", "tabla"]  # as the datasets fixture's


def fbeta(p: float, r: float, beta2: float) -> float:
    return (1 + beta2) * p * r / (beta2 * p + r)


def _cfg():
    cfg = get_cfg()
    add_ovavss_config(cfg)
    return cfg


def test_avss_report_fields_and_config_keys(datasets, helpers, tmp_path):
    """from_config passes TEST.AVSS.* on; the JSON names each setting, summary and class field."""
    name = datasets.avss(novel_ids=[3])  # tabla (4) is neither base nor novel: group "-"
    cfg = _cfg()
    cfg.TEST.AVSS.EVAL_SIZE = 2
    cfg.TEST.AVSS.F_BETA2 = 1.0
    cfg.TEST.AVSS.GT_FILTER_TO_METADATA_CLASSES = True
    out = tmp_path / "out"
    evaluator = AVSSEvaluator.from_config(cfg, name, output_dir=str(out))
    # 4x4 -> 2x2 keeps rows and columns 1 and 3. Label at those: [[1, 0], [3, 0]]; violin (3)
    # is not among the clip's class_names -> ignored. Prediction there: [[1, 1], [0, 0]].
    label = np.array([[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 3, 0, 0]])
    pred = np.array([[0, 0, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]])
    clip = datasets.clip([label], class_names=["cat"])
    res = helpers.run(evaluator, [clip], [[{"sem_seg": helpers.one_hot(pred, 5)}]], 1)
    # Counted pixels (gt, pred): (1, 1), (0, 1), (0, 0). cat: inter 1, union 2; bg: inter 1,
    # union 2. Per frame F (beta^2 = 1): cat P 1/2 R 1; bg P 1 R 1/2.
    assert res["IoU-cat"] == pytest.approx(50) and res["IoU-background"] == pytest.approx(50)
    assert math.isnan(res["IoU-violin"])
    assert res["F"] == pytest.approx(100 * fbeta(1 / 2, 1, 1.0))

    report = json.loads((out / "avss_evaluation.json").read_text())
    assert report["dataset"] == name and report["num_frames"] == 1
    assert report["settings"] == {
        "eval_size": 2,
        "beta2": 1.0,
        "gt_filter_to_metadata_classes": True,
    }
    assert set(report["summary"]) == {
        "mIoU",
        "mIoU_base",
        "mIoU_novel",
        "hIoU",
        "mIoU_frame",
        "F",
        "F_base",
        "F_novel",
    }
    assert report["summary"]["mIoU"] == pytest.approx(50)
    per_class = report["per_class"]
    assert [c["group"] for c in per_class] == ["background", "base", "base", "novel", "-"]
    assert [c["id"] for c in per_class] == [0, 1, 2, 3, 4]
    assert [c["class"] for c in per_class] == ["background", "cat", "dog", "violin", "tabla"]
    assert [c["IoU"] for c in per_class] == [pytest.approx(50), pytest.approx(50), None, None, None]
    assert [c["gt_pixels"] for c in per_class] == [2, 1, 0, 0, 0]
    assert [c["pred_pixels"] for c in per_class] == [1, 2, 0, 0, 0]
    assert report["confusion_matrix"] == [
        [1, 1, 0, 0, 0],
        [0, 1, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ]


def test_binary_report_fields_and_config_keys(datasets, helpers, tmp_path):
    """from_config passes TEST.AVS.* on (eval size, beta^2, sweep and its thresholds)."""
    name = datasets.binary()
    cfg = _cfg()
    cfg.TEST.AVS.EVAL_SIZE = 2
    cfg.TEST.AVS.F_BETA2 = 1.0
    cfg.TEST.AVS.F_SWEEP = True
    cfg.TEST.AVS.F_SWEEP_THRESHOLDS = 3
    out = tmp_path / "out"
    evaluator = AVSBinaryEvaluator.from_config(cfg, name, output_dir=str(out))
    # Sampled 2x2 (rows/cols 1, 3): label [[1, 1], [0, 0]], prediction [[1, 0], [0, 0]].
    label = np.zeros((4, 4), dtype=np.int64)
    label[1, 1] = label[1, 3] = 2
    pred = np.zeros((4, 4), dtype=np.int64)
    pred[1, 1] = 1
    pred[0, 0] = 1  # dropped by the 2x2 sampling
    empty = np.zeros((4, 4), dtype=np.int64)  # empty ground truth: in Mj, not in F
    clip = datasets.clip([label, empty])
    outputs = [[{"sem_seg": helpers.one_hot(p, 2)} for p in (pred, empty)]]
    res = helpers.run(evaluator, [clip], outputs, 1)
    # Frame 1: J = 1/2, P 1, R 1/2, F(beta^2 = 1) = 2/3. Frame 2: J = 1 (all background).
    assert res["Mj"] == pytest.approx(100 * (1 / 2 + 1) / 2)
    assert res["F"] == pytest.approx(100 * 2 / 3)
    # Foreground probability 1 - softmax(sem_seg)[0]: 0.731 on the predicted pixel, 0.269
    # elsewhere. Thresholds 0, 0.5, 1 - 1e-10: F = 2/3 (P 1/2, R 1), 2/3 (P 1, R 1/2), 0.
    assert res["F_sweep"] == pytest.approx(100 * 2 / 3)

    report = json.loads((out / "avs_binary_evaluation.json").read_text())
    assert report["dataset"] == name
    assert report["num_frames"] == 2 and report["num_empty_gt_frames"] == 1
    assert report["settings"] == {
        "eval_size": 2,
        "beta2": 1.0,
        "f_sweep": True,
        "num_thresholds": 3,
    }
    assert report["results"] == pytest.approx(res)


def test_binary_eval_size_without_config(datasets, helpers):
    """eval_size given to the constructor reaches the frame resizing (and 1 means 1x1)."""
    name = datasets.binary()
    label = np.array([[1, 0], [0, 0]])
    pred = np.array([[0, 0], [0, 1]])  # 1x1 samples pixel (1, 1): gt 0, pred 1
    outputs = [[{"sem_seg": helpers.one_hot(pred, 2)}]]
    full = helpers.run(AVSBinaryEvaluator(name), [datasets.clip([label])], outputs, 1)
    one = helpers.run(AVSBinaryEvaluator(name, eval_size=1), [datasets.clip([label])], outputs, 1)
    assert full["Mj"] == pytest.approx(0)  # inter 0, union 2
    assert one["Mj"] == pytest.approx(0) and math.isnan(one["F"])  # empty gt at 1x1


def test_avss_eval_size_one(datasets, helpers):
    """EVAL_SIZE 1 samples the centre pixel (the resize is not skipped for 1)."""
    name = datasets.avss()
    label = np.array([[1, 1], [1, 2]])  # 1x1 keeps pixel (1, 1): dog
    res = helpers.run(
        AVSSEvaluator(name, eval_size=1),
        [datasets.clip([label])],
        [[{"sem_seg": helpers.one_hot(label, 5)}]],
        1,
    )
    assert res["IoU-dog"] == pytest.approx(100) and math.isnan(res["IoU-cat"])


def test_empty_evaluation_is_nan(datasets):
    """No frame processed: every binary metric is NaN (no division by zero)."""
    res = AVSBinaryEvaluator(datasets.binary(), f_sweep=True).evaluate()["avs_binary"]
    assert math.isnan(res["Mj"]) and math.isnan(res["F"]) and math.isnan(res["F_sweep"])


def test_metadata_without_base_and_novel_ids(datasets, helpers):
    """Datasets registered without base_ids / novel_ids evaluate; every class is in group '-'."""
    name = datasets._register("test_avss", {"stuff_classes": AVSS_CLASSES, "ignore_label": 255})
    label = np.array([[0, 1]])
    res = helpers.run(
        AVSSEvaluator(name), [datasets.clip([label])], [[{"sem_seg": helpers.one_hot(label, 5)}]], 1
    )
    assert res["mIoU"] == pytest.approx(100)
    assert math.isnan(res["mIoU_base"]) and math.isnan(res["mIoU_novel"])


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"base_ids": [1, 5]}, r"base_ids \[5\] are not class label indices 1\.\.4"),
        ({"novel_ids": [0, 3]}, r"novel_ids \[0\] are not class label indices 1\.\.4"),
    ],
)
def test_base_and_novel_ids_are_checked(datasets, extra, message):
    with pytest.raises(ValueError, match=message):
        AVSSEvaluator(datasets.avss(**extra))


def test_last_class_is_a_valid_id(datasets):
    AVSSEvaluator(datasets.avss(base_ids=[1, 2], novel_ids=[3, 4]))  # 4 = K: accepted


def _index_png(tmp_path, array) -> str:
    path = tmp_path / f"label_{uuid.uuid4().hex}.png"
    image = Image.fromarray(np.asarray(array, dtype=np.uint8), mode="P")
    image.putpalette(palette(256).tobytes())
    image.save(path)
    return str(path)


def test_dataset_ignore_label_is_used(datasets, helpers, tmp_path):
    """A dataset's own ignore label (200) is read from its metadata and left out of the counts."""
    name = datasets.avss(ignore_label=200)
    label = np.array([[0, 1, 200, 200]])
    pred = np.array([[0, 1, 1, 1]])
    clip = datasets.clip([label * 0], sem_seg_file_names=[_index_png(tmp_path, label)])
    res = helpers.run(AVSSEvaluator(name), [clip], [[{"sem_seg": helpers.one_hot(pred, 5)}]], 1)
    assert res["mIoU"] == pytest.approx(100)


def test_default_ignore_label_is_255(datasets, helpers, tmp_path):
    """Metadata without ignore_label: 255 is the ignore value."""
    name = datasets._register("test_avss", {"stuff_classes": AVSS_CLASSES})
    label = np.array([[0, 1, 255, 255]])
    pred = np.array([[0, 1, 1, 1]])
    clip = datasets.clip([label * 0], sem_seg_file_names=[_index_png(tmp_path, label)])
    res = helpers.run(AVSSEvaluator(name), [clip], [[{"sem_seg": helpers.one_hot(pred, 5)}]], 1)
    assert res["mIoU"] == pytest.approx(100)


def test_frame_indices_pick_the_label_files(datasets, helpers):
    """Output j is compared with label file frame_indices[j]; without the key, with file j."""
    name = datasets.avss()
    labels = [np.array([[1, 1]]), np.array([[2, 2]]), np.array([[3, 3]])]
    clip = datasets.clip(labels, frame_indices=[2, 0])
    outputs = [[{"sem_seg": helpers.one_hot(labels[t], 5)} for t in (2, 0)]]
    res = helpers.run(AVSSEvaluator(name), [clip], outputs, 1)
    assert res["IoU-violin"] == pytest.approx(100) and res["IoU-cat"] == pytest.approx(100)
    assert math.isnan(res["IoU-dog"])  # frame 1 is not evaluated

    clip = datasets.clip(labels[:2])
    del clip["frame_indices"]
    outputs = [[{"sem_seg": helpers.one_hot(lab, 5)} for lab in labels[:2]]]
    res = helpers.run(AVSSEvaluator(name), [clip], outputs, 1)
    assert res["IoU-cat"] == pytest.approx(100) and res["IoU-dog"] == pytest.approx(100)


def test_distributed_flag_and_gather_destination(datasets, helpers, monkeypatch):
    """With 2 processes the binary evaluator sums both on rank 0 (gathered to dst 0, by
    default); with distributed=False each evaluator keeps its own statistics."""
    from detectron2.utils import comm

    name = datasets.binary()
    label = np.array([[1, 1, 0, 0]])
    good, bad = np.array([[1, 1, 0, 0]]), np.array([[0, 0, 1, 1]])  # J = 1 and J = 0
    other = AVSBinaryEvaluator(name)
    other.process([datasets.clip([label])], [[{"sem_seg": helpers.one_hot(bad, 2)}]])

    def gather(data, dst=0):
        assert dst == 0, f"gathered to rank {dst}"
        return [data, other._stats]

    monkeypatch.setattr(comm, "get_world_size", lambda: 2)
    monkeypatch.setattr(comm, "is_main_process", lambda: True)
    monkeypatch.setattr(comm, "gather", gather)
    clip, outputs = datasets.clip([label]), [[{"sem_seg": helpers.one_hot(good, 2)}]]
    summed = AVSBinaryEvaluator(name)
    summed.process([clip], outputs)
    assert summed.evaluate()["avs_binary"]["Mj"] == pytest.approx(50)
    local = AVSBinaryEvaluator(name, distributed=False)
    local.process([clip], outputs)
    assert local.evaluate()["avs_binary"]["Mj"] == pytest.approx(100)  # its own frame only
    avss = AVSSEvaluator(datasets.avss(), distributed=False)
    avss.process([clip], [[{"sem_seg": helpers.one_hot(good, 5)}]])
    assert avss.evaluate()["sem_seg"]["IoU-cat"] == pytest.approx(100)


def test_gt_filter_without_class_names_keeps_background_only(datasets, helpers):
    """GT_FILTER_TO_METADATA_CLASSES on a clip without class_names: every object is ignored."""
    label = np.array([[0, 1, 2, 0]])
    pred = np.array([[0, 0, 1, 1]])
    clip = datasets.clip([label])
    del clip["class_names"]
    evaluator = AVSSEvaluator(datasets.avss(), gt_filter_to_metadata_classes=True)
    res = helpers.run(evaluator, [clip], [[{"sem_seg": helpers.one_hot(pred, 5)}]], 1)
    # Counted: (0, 0) and (0, 1): background IoU 1/2, cat predicted once with no ground truth.
    assert res["IoU-background"] == pytest.approx(50) and res["IoU-cat"] == 0
    assert math.isnan(res["IoU-dog"])


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
