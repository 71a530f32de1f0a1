"""Per-frame combination of overlapping windows: mean semantic maps, voted track masks."""

import torch

from ovavss_d2.inference import FrameCombiner, MaskTracker, WindowObjects

H = W = 4


def window(start, sem_value, masks, scores, class_scores):
    """Two-frame window: sem_seg filled with ``sem_value``; ``masks`` (n, 2, H, W)."""
    outputs = [{"sem_seg": torch.full((3, H, W), float(sem_value))} for _ in range(2)]
    scores = torch.as_tensor(scores, dtype=torch.float32)
    objs = WindowObjects(start, masks, scores, torch.as_tensor(class_scores, dtype=torch.float32))
    return outputs, objs


def test_one_output_per_frame_with_the_documented_rule():
    tracker = MaskTracker(match_iou=0.3, max_gap=0)
    combiner = FrameCombiner(tracker, mask_vote=0.5)
    a = torch.zeros(2, H, W, dtype=torch.bool)
    a[:, :2, :] = True  # rows 0-1
    b = a.clone()
    b[:, 2, :] = True  # rows 0-2: IoU 2/3 with a
    # windows of 2 frames, stride 1 over 3 frames: [0, 2) and [1, 3)
    out0, obj0 = window(0, 1.0, a[None], [0.8], [[0.8, 0.0]])
    combiner.add(0, out0, obj0, tracker.update(obj0))
    first = list(combiner.emit(before=1))
    out1, obj1 = window(1, 3.0, b[None], [0.6], [[0.0, 0.6]])
    combiner.add(1, out1, obj1, tracker.update(obj1))
    rest = list(combiner.emit(before=3))
    frames = first + rest
    assert len(frames) == 3
    # sem_seg: frame 1 is covered by both windows -> mean (1 + 3) / 2
    assert [float(f["sem_seg"][0, 0, 0]) for f in frames] == [1.0, 2.0, 3.0]
    for f in frames:
        assert f["instances"].track_ids.tolist() == [0]
    # frame 1: a in one window, b in the other; vote 0.5 keeps rows 0-2 (one of two windows)
    assert frames[1]["instances"].pred_masks[0].sum() == 3 * W
    assert abs(float(frames[1]["instances"].scores[0]) - 0.7) < 1e-6
    # class: log .8 + log .05 (class 0) beats log .05 + log .6 (class 1)
    assert frames[2]["instances"].pred_classes.tolist() == [0]


def test_vote_drops_a_mask_seen_by_one_window_of_two():
    tracker = MaskTracker(enabled=False)
    combiner = FrameCombiner(tracker, mask_vote=0.6)
    mask = torch.ones(1, 2, H, W, dtype=torch.bool)
    out, obj = window(0, 0.0, mask, [0.9], [[0.9, 0.0]])
    combiner.add(0, out, obj, tracker.update(obj))
    out, empty = window(0, 0.0, mask[:0], [], torch.zeros(0, 2))
    combiner.add(0, out, empty, tracker.update(empty))
    frames = list(combiner.emit(before=2))
    assert [len(f["instances"]) for f in frames] == [0, 0]  # 1 of 2 windows < 0.6


def test_track_in_one_of_two_covering_windows_keeps_its_score():
    """A track's score in a frame is the mean over the windows holding the track, not over all
    covering windows: seen (score 0.8) in one of two windows, it scores 0.8, not 0.4."""
    tracker = MaskTracker(match_iou=0.3, max_gap=0)
    combiner = FrameCombiner(tracker, mask_vote=0.5)
    top = torch.zeros(1, 2, H, W, dtype=torch.bool)
    top[:, :, :2, :] = True
    bottom = torch.zeros(1, 2, H, W, dtype=torch.bool)
    bottom[:, :, 3:, :] = True  # IoU 0 with top: another track
    out0, obj0 = window(0, 1.0, top, [0.8], [[0.8, 0.0]])
    combiner.add(0, out0, obj0, tracker.update(obj0))
    out1, obj1 = window(1, 1.0, bottom, [0.6], [[0.0, 0.6]])
    combiner.add(1, out1, obj1, tracker.update(obj1))
    frames = list(combiner.emit(before=3))
    shared = frames[1]["instances"]  # frame 1: both windows cover it, each holds one track
    assert shared.track_ids.tolist() == [0, 1]
    torch.testing.assert_close(shared.scores, torch.tensor([0.8, 0.6]))
    assert shared.pred_masks.sum((1, 2)).tolist() == [2 * W, 1 * W]  # one vote of two: kept


def test_silent_frames_of_per_frame_scores_reach_the_tracks_and_seconds_sounding():
    """Model outputs with per-frame scores (an object silent in frames 0-1 of 4) through
    window_objects, the tracker and the combiner into the demo's JSON: the track is in frames 2-3
    only, and its seconds_sounding counts those 2 frames."""
    from ovavss_d2.inference import window_objects
    from ovavss_d2.modeling.meta_arch.inference import clip_results
    from ovavss_d2.utils.visualization import instance_records, select_instances, track_summaries

    logits = torch.full((1, 4, H, W), 10.0)  # (Q, T, h, w): visible in every frame
    scores = torch.zeros(1, 4, 2)
    scores[0, :, 1] = torch.tensor([0.05, 0.1, 0.9, 0.8])
    size = dict(padded_size=(H, W), image_size=(H, W), output_size=(H, W))
    outputs = clip_results(scores, logits, top_k=5, score_threshold=0.3, mask_threshold=0.5, **size)
    objects = window_objects(outputs, 0, 2, dedup_iou=0.8)
    torch.testing.assert_close(objects.scores, torch.tensor([0.9]))  # its best frame
    assert objects.masks[0].flatten(1).any(1).tolist() == [False, False, True, True]
    tracker = MaskTracker(match_iou=0.3, max_gap=3)
    combiner = FrameCombiner(tracker)
    combiner.add(0, outputs, objects, tracker.update(objects))
    frames = list(combiner.emit(before=4))
    assert [len(f["instances"]) for f in frames] == [0, 0, 1, 1]
    torch.testing.assert_close(frames[3]["instances"].scores, torch.tensor([0.8]))
    records = [
        {"time": t / 2.0, "objects": instance_records(select_instances(f["instances"], 0.3), "ab")}
        for t, f in enumerate(frames)
    ]
    (track,) = track_summaries(records, tracker.tracks, "ab", fps=2.0)
    assert (track["first_time"], track["num_frames"], track["seconds_sounding"]) == (1.0, 2, 1.0)
