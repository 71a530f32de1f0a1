"""AVSS-Synth records read back: re-rendered object masks match the written labels, silent masks
cover only unlabelled pixels, and every clip gets its condition bands."""

from pathlib import Path

import numpy as np
import pytest

from avss_synth import build_avss_synth
from avss_synth.records import SynthRecords, find_synth_root, plan_from_record, sounding_masks
from ovavss_d2.data.class_lists import load_class_list
from ovavss_d2.data.labels import read_label_map

SIZE = (64, 48)  # (W, H)


@pytest.fixture(scope="module")
def built(tmp_path_factory, media_dirs) -> Path:
    root = tmp_path_factory.mktemp("records") / "AVSS-Synth"
    build_avss_synth(
        root,
        clips={"train": 0, "val": 0, "test": 6},
        size=SIZE,
        stamps_dir=media_dirs[0],
        backgrounds_dir=media_dirs[1],
        variants={"clean": None},
    )
    return root


def test_records_match_labels_and_conditions(built):
    classes = load_class_list("avss_synth.txt")
    index = {k: i for i, k in enumerate(classes.names)}
    records = SynthRecords(built)
    assert find_synth_root(built) == built
    assert find_synth_root(built / "variants" / "test_clean") == built
    silent_pixels = 0
    for uid, rec in records.records.items():
        plan = plan_from_record(rec, records.stamps_dir)
        clip = records.clip(uid, SIZE)
        sounding = sounding_masks(plan, SIZE)
        for t in range(5):
            label = read_label_map(built / rec["subset"] / uid / "labels_rgb" / f"{t}.png", 23)
            redrawn = np.zeros_like(label)
            for i, obj in enumerate(plan.objects):
                redrawn[sounding[t][i]] = index[obj.key]
            np.testing.assert_array_equal(redrawn, label)
            assert not (clip.silent_masks[t] & (label != 0)).any()
        silent_pixels += int(clip.silent_masks.sum())
        assert set(clip.conditions) == {
            "SNR",
            "off-screen sound",
            "sources",
            "occlusion",
            "silent objects",
        }
        assert clip.conditions["sources"] == str(sum(o.sounding for o in plan.objects))
    assert silent_pixels > 0  # some clip has a silent object or a silent second
    assert records.clip("no_such_clip", SIZE) is None
