"""The crop targets of a batch (boxes from ground-truth masks), against hand-computed values."""

import torch
from detectron2.structures import Instances

from ovavss_d2.baselines.tpavi import crop_class_ids, crop_targets_from_batch


def _clip(masks, classes, binary=False, names=()):
    n, t, h, w = masks.shape
    inst = Instances((h, w))
    inst.gt_classes = torch.as_tensor(classes, dtype=torch.long)
    inst.gt_masks = masks
    return {
        "images": torch.zeros(t, 3, h, w, dtype=torch.uint8),
        "instances": inst,
        "binary": binary,
        "class_names": list(names),
    }


def test_crop_targets_of_a_batch():
    # clip 0: 2 objects, 3 frames, frame 1 unannotated (all-False masks)
    m0 = torch.zeros(2, 3, 10, 10, dtype=torch.bool)
    m0[0, 0, 1:3, 1:4] = True
    m0[0, 2, 2:4, 2:5] = True
    m0[1, 0, 5:9, 5:9] = True
    m0[1, 2, 0:1, 0:1] = True  # 1 pixel: below min_area
    # clip 1: binary, one object in 2 frames, metadata names one class
    m1 = torch.zeros(1, 2, 10, 10, dtype=torch.bool)
    m1[0, :, 4:6, 4:6] = True
    clips = [_clip(m0, [7, 3]), _clip(m1, [0], binary=True, names=["dog"])]
    t = crop_targets_from_batch(clips, class_ids={"cat": 0, "dog": 5}, min_area=2)
    assert len(t) == 5
    rows = sorted(
        zip(
            t.object_index.tolist(),
            t.frame_index.tolist(),
            t.clip_index.tolist(),
            t.labels.tolist(),
            t.boxes.tolist(),
        )
    )
    assert rows == [
        (0, 0, 0, 7, [1, 1, 4, 3]),
        (0, 2, 0, 7, [2, 2, 5, 4]),
        (1, 0, 0, 3, [5, 5, 9, 9]),
        (2, 3, 1, 5, [4, 4, 6, 6]),  # frames of clip 1 follow the 3 of clip 0
        (2, 4, 1, 5, [4, 4, 6, 6]),
    ]


def test_crop_class_ids_of_binary_clips():
    masks = torch.ones(1, 1, 2, 2, dtype=torch.bool)
    ids = {"dog": 4, "cat": 1}
    assert crop_class_ids(_clip(masks, [0], binary=True, names=["cat"]), ids).tolist() == [1]
    # several sounding classes collapsed into one mask: the class is unknown
    assert crop_class_ids(_clip(masks, [0], binary=True, names=["cat", "dog"]), ids).tolist() == [
        -1
    ]
    assert crop_class_ids(_clip(masks, [0], binary=True, names=["cow"]), ids).tolist() == [-1]
    assert crop_class_ids(_clip(masks, [0], binary=True, names=["cat"]), None).tolist() == [-1]
    # semantic clips keep the mapper's classes
    assert crop_class_ids(_clip(masks.repeat(2, 1, 1, 1), [2, 9], names=["x"]), ids).tolist() == [
        2,
        9,
    ]


def test_margin_is_clipped_to_the_frame():
    masks = torch.zeros(1, 1, 10, 20, dtype=torch.bool)
    masks[0, 0, 0:4, 2:6] = True  # 4 x 4 box at (2, 0)
    t = crop_targets_from_batch([_clip(masks, [0])], margin=0.5)
    assert t.boxes.tolist() == [[0.0, 0.0, 8.0, 6.0]]


def test_max_crops_keeps_whole_objects():
    masks = torch.zeros(3, 4, 8, 8, dtype=torch.bool)
    masks[0, :, 0:2, 0:2] = True  # 4 crops
    masks[1, :2, 4:6, 4:6] = True  # 2 crops
    masks[2, :3, 2:4, 6:8] = True  # 3 crops
    for seed in range(5):
        g = torch.Generator().manual_seed(seed)
        t = crop_targets_from_batch([_clip(masks, [0, 1, 2])], max_crops=5, generator=g)
        assert len(t) <= 5
        counts = torch.bincount(t.object_index, minlength=3).tolist()
        full = [4, 2, 3]
        assert all(c in (0, f) for c, f in zip(counts, full)), counts  # an object is all in or out
    t = crop_targets_from_batch([_clip(masks, [0, 1, 2])], max_crops=1)
    assert len(t) == 1


def test_no_objects_gives_no_crops():
    t = crop_targets_from_batch([_clip(torch.zeros(0, 2, 4, 4, dtype=torch.bool), [])])
    assert len(t) == 0 and t.boxes.shape == (0, 4)
