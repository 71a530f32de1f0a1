"""Objects of a window and their association into tracks, on hand-made masks."""

import pytest
import torch
from detectron2.structures import Instances

from ovavss_d2.inference import MaskTracker, WindowObjects, window_objects

H = W = 8


def box(x0: int, y0: int, x1: int, y1: int) -> torch.Tensor:
    mask = torch.zeros(H, W, dtype=torch.bool)
    mask[y0:y1, x0:x1] = True
    return mask


def objects(start, masks, class_scores) -> WindowObjects:
    """``masks``: per object a list of T (H, W) masks; ``class_scores``: per object K scores."""
    scores = torch.tensor(class_scores, dtype=torch.float32)
    return WindowObjects(
        start, torch.stack([torch.stack(m) for m in masks]), scores.max(1).values, scores
    )


def tracker(**kwargs) -> MaskTracker:
    return MaskTracker(**{"match_iou": 0.3, "max_gap": 2, "evidence_floor": 0.05, **kwargs})


def test_overlapping_windows_keep_one_track_id():
    t = tracker()
    left, right = box(0, 0, 4, 4), box(4, 4, 8, 8)
    # window 0: frames 0-2, two objects; window 1: frames 1-3, the same two, listed the other way
    ids0 = t.update(objects(0, [[left] * 3, [right] * 3], [[0.9, 0.0], [0.0, 0.8]]))
    ids1 = t.update(objects(1, [[right] * 3, [box(0, 0, 4, 3)] * 3], [[0.0, 0.7], [0.6, 0.0]]))
    assert ids0 == [0, 1]
    assert ids1 == [1, 0]  # IoU 0.75 with the left object on the shared frames 1-2
    ids2 = t.update(objects(2, [[box(2, 2, 6, 6)] * 3], [[0.5, 0.0]]))
    assert ids2 == [2]  # IoU 1/7 < 0.3 with both: a new track


def test_class_flip_in_one_window_keeps_the_name():
    t = tracker()
    dog = box(1, 1, 5, 5)
    for start, scores in [(0, [0.7, 0.0]), (1, [0.0, 0.59]), (2, [0.6, 0.1])]:
        (track_id,) = t.update(objects(start, [[dog] * 3], [scores]))
        assert track_id == 0
    # evidence: dog log .7 + log .05 + log .6, cello log .05 + log .59 + log .1
    expected = (
        torch.tensor([0.7, 0.05, 0.6]).log().sum(),
        torch.tensor([0.05, 0.59, 0.1]).log().sum(),
    )
    torch.testing.assert_close(t.tracks[0].evidence, torch.stack(expected))
    assert t.tracks[0].class_id == 0 and t.tracks[0].num_windows == 3


def test_silent_gap_keeps_the_id_up_to_max_gap():
    empty = torch.zeros(H, W, dtype=torch.bool)
    dog = box(1, 1, 5, 5)
    t = tracker(max_gap=2)
    assert t.update(objects(0, [[dog, dog, dog]], [[0.9]])) == [0]
    # back-to-back window 3-5: silent in 3 and 4, sounds again in 5 -> gap of 2 frames (3, 4)
    assert t.update(objects(3, [[empty, empty, dog]], [[0.9]])) == [0]
    assert t.tracks[0].last_frame == 5
    # silent in 6-9, back at 10: a gap of 4 frames > max_gap -> a new track
    assert t.update(objects(10, [[dog, dog, dog]], [[0.9]])) == [1]
    # the ended track keeps its evidence but no mask (memory stays flat over a long video)
    assert t.tracks[0].last_mask is None and t.tracks[0].recent == {}
    assert t.tracks[0].num_windows == 2 and t.tracks[0].class_id == 0


def test_disabled_tracker_gives_new_ids_every_window():
    t = tracker(enabled=False)
    dog = box(1, 1, 5, 5)
    assert t.update(objects(0, [[dog] * 3], [[0.9]])) == [0]
    assert t.update(objects(3, [[dog] * 3], [[0.9]])) == [1]


def test_window_objects_merge_one_query_named_twice():
    dog, other = box(0, 0, 4, 4), box(5, 5, 8, 8)
    outputs = []
    for _ in range(2):  # two frames, the same three pairs in both
        inst = Instances((H, W))
        inst.pred_masks = torch.stack([dog, other, dog])
        inst.scores = torch.tensor([0.6, 0.5, 0.3])
        inst.pred_classes = torch.tensor([0, 2, 1])
        outputs.append({"instances": inst})
    objs = window_objects(outputs, start=4, num_classes=3, dedup_iou=0.8)
    assert len(objs) == 2 and objs.start == 4
    torch.testing.assert_close(objs.class_scores, torch.tensor([[0.6, 0.3, 0.0], [0.0, 0.0, 0.5]]))
    torch.testing.assert_close(objs.scores, torch.tensor([0.6, 0.5]))
    assert torch.equal(objs.masks[0], torch.stack([dog, dog]))
    assert len(window_objects(outputs, 4, 3, dedup_iou=None)) == 3


def test_bad_settings():
    with pytest.raises(ValueError, match="MATCH_IOU"):
        MaskTracker(match_iou=0.0)
    with pytest.raises(ValueError, match="MAX_GAP"):
        MaskTracker(max_gap=-1)


@pytest.mark.parametrize("overlapping", [True, False])
def test_iou_exactly_at_match_iou_continues_the_track(overlapping):
    """MATCH_IOU is the lowest IoU that matches (``>=``): IoU 8/16 = 0.5 at MATCH_IOU 0.5 keeps
    the id, on frames both windows cover and across a gap alike; one pixel less starts a track."""
    whole, half, less = box(0, 0, 4, 4), box(0, 0, 4, 2), box(0, 0, 4, 2)
    less[1, 3] = False  # IoU 7/16
    start = 1 if overlapping else 3  # window 0 covers frames 0-2
    for other, expected in [(half, [0]), (less, [1])]:
        t = tracker(match_iou=0.5, max_gap=2)
        assert t.update(objects(0, [[whole] * 3], [[0.9]])) == [0]
        assert t.update(objects(start, [[other] * 3], [[0.9]])) == expected
