"""Track metrics on hand-made label maps and predictions: matching, name and identity switches."""

import math

import numpy as np

from ovavss_d2.evaluation.track_metrics import TrackMetrics, match_frame


def label_with(*boxes):
    """(8, 8) label map; each box is (class, y0, y1, x0, x1)."""
    label = np.zeros((8, 8), dtype=np.int64)
    for c, y0, y1, x0, x1 in boxes:
        label[y0:y1, x0:x1] = c
    return label


def mask(y0, y1, x0, x1):
    m = np.zeros((8, 8), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def test_match_frame_hungarian_and_threshold():
    label = label_with((3, 0, 4, 0, 4), (5, 4, 8, 4, 8))
    preds = np.stack([mask(4, 8, 4, 8), mask(0, 4, 0, 2), mask(0, 1, 0, 1)])
    matches = match_frame(label, preds, iou_threshold=0.5)
    assert matches == {5: (0, 1.0), 3: (1, 0.5)}
    assert match_frame(label, preds, iou_threshold=0.6) == {5: (0, 1.0)}
    label[0, 0] = 255  # ignored pixels count for neither side
    assert match_frame(label, preds[2:], iou_threshold=0.0) == {}  # IoU 0 with the rest
    assert match_frame(np.zeros((8, 8), np.int64), preds) == {}


def test_switches_along_a_ground_truth_object():
    metrics = TrackMetrics(iou_threshold=0.5)
    dog = label_with((2, 0, 4, 0, 4))
    box = mask(0, 4, 0, 4)
    # frames: (track id, class) of the matching prediction, None = no prediction
    for track, cls in [(0, 1), (0, 1), (None, None), (0, 4), (7, 4), (7, 4)]:
        masks = np.stack([box]) if track is not None else np.zeros((0, 8, 8), bool)
        metrics.process_frame("clip", dog, masks, [cls] if track is not None else [], [track] * 1)
    metrics.process_frame("clip", np.zeros((8, 8), np.int64), np.stack([box]), [1], [0])  # silent
    result = metrics.summarize()
    assert result["gt_objects"] == 1 and result["gt_object_frames"] == 6
    assert result["id_switches"] == 1 and result["name_switches"] == 1  # 0 -> 7; 1 -> 4
    assert result["id_switches_per_object"] == 1.0 and result["name_switches_per_track"] == 1.0
    assert math.isclose(result["match_rate"], 100 * 5 / 6)


def test_objects_of_different_clips_are_apart():
    metrics = TrackMetrics()
    dog, box = label_with((2, 0, 4, 0, 4)), mask(0, 4, 0, 4)
    metrics.process_frame("a", dog, box[None], [1], [0])
    metrics.process_frame("b", dog, box[None], [1], [9])  # another clip: no switch
    result = metrics.summarize()
    assert result["gt_objects"] == 2 and result["id_switches"] == 0
    assert math.isnan(TrackMetrics().summarize()["id_switches_per_object"])


def test_name_and_identity_switches_are_counted_apart():
    """Counts that differ, so that deriving one from the other's field fails: object 2 has 2
    name switches and 1 identity switch, object 3 has 0 name switches and 2 identity switches."""
    metrics = TrackMetrics(iou_threshold=0.5)
    dog, cat = (2, 0, 4, 0, 4), (3, 4, 8, 4, 8)
    dog_box, cat_box = mask(0, 4, 0, 4), mask(4, 8, 4, 8)
    dog_steps = [(0, 1), (0, 4), (0, 1), (5, 1)]  # (track id, class) per frame
    cat_steps = [(1, 6), (2, 6), (3, 6), (3, 6)]
    for (dog_id, dog_cls), (cat_id, cat_cls) in zip(dog_steps, cat_steps):
        metrics.process_frame(
            "clip",
            label_with(dog, cat),
            np.stack([cat_box, dog_box]),
            [cat_cls, dog_cls],
            [cat_id, dog_id],
        )
    result = metrics.summarize()
    assert result["gt_objects"] == 2 and result["match_rate"] == 100.0
    assert result["name_switches"] == 2 and result["id_switches"] == 3
    assert result["name_switches_per_track"] == 1.0 and result["id_switches_per_object"] == 1.5
