"""Overlay colours by track, JSON records with track ids, per-track summaries."""

import numpy as np
import torch
from detectron2.structures import Instances

from ovavss_d2.utils.visualization import (
    draw_instances,
    instance_records,
    track_color,
    track_summaries,
)


def two_dogs(track_ids=None) -> Instances:
    inst = Instances((60, 80))
    masks = torch.zeros(2, 60, 80, dtype=torch.bool)
    masks[0, 10:40, 5:35] = True
    masks[1, 10:40, 45:75] = True
    inst.pred_masks, inst.scores, inst.pred_classes = (
        masks,
        torch.tensor([0.9, 0.8]),
        torch.tensor([0, 0]),
    )
    if track_ids is not None:
        inst.track_ids = torch.tensor(track_ids)
    return inst


def test_objects_of_one_class_are_coloured_by_track():
    frame = np.zeros((60, 80, 3), dtype=np.uint8)
    drawn = draw_instances(frame, two_dogs([3, 8]), ["dog"], alpha=0.5).astype(float)
    for (y, x), track in [((35, 20), 3), ((35, 60), 8)]:
        expected = 0.5 * 255 * track_color(track)
        assert np.abs(drawn[y, x] - expected).max() < 4
    assert np.abs(drawn[35, 20] - drawn[35, 60]).max() > 20  # two tracks, two colours
    plain = draw_instances(frame, two_dogs(), ["dog"], alpha=0.5).astype(float)
    assert np.abs(plain[35, 20] - plain[35, 60]).max() < 4  # without tracks: the class colour


def test_records_and_summaries():
    records = [
        {"time": 0.5, "objects": instance_records(two_dogs([3, 8]), ["dog"])},
        {"time": 1.5, "objects": instance_records(two_dogs([3, 9]), ["dog"])},
    ]
    assert [o["track_id"] for o in records[0]["objects"]] == [3, 8]
    assert records[0]["objects"][0]["area"] == 30 * 30

    class Track:
        class_id = 0

    tracks = track_summaries(records, {3: Track(), 8: Track(), 9: Track()}, ["dog"], fps=2.0)
    assert [t["track_id"] for t in tracks] == [3, 8, 9]
    assert tracks[0] == {
        "track_id": 3,
        "class": "dog",
        "mean_score": 0.9,
        "first_time": 0.5,
        "last_time": 1.5,
        "seconds_sounding": 1.0,  # 2 frames at 2 fps
        "num_frames": 2,
        "names_shown": ["dog"],
    }
    assert tracks[1]["seconds_sounding"] == 0.5 and tracks[2]["first_time"] == 1.5
