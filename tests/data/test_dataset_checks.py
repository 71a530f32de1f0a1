"""ovavss_d2.data.dataset_checks: one-line dataset errors naming the config key, clip and file."""

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from ovavss_d2.data.datasets import register_avsbench
from ovavss_d2.utils.testing import make_fake_avsbench


def test_dataset_checks_one_line(tmp_path):
    from ovavss_d2.data.dataset_checks import DatasetError, load_checked, one_line

    fake = make_fake_avsbench(tmp_path / "AVSBench-semantic", clips_per_split=1, subsets=("v1s",))
    for frame in ("1.jpg", "2.jpg"):
        (fake.select("v1s", "val")[0].clip_dir / "frames" / frame).unlink()
    (fake.select("v1s", "val")[0].clip_dir / "audio.wav").unlink()
    register_avsbench.register_avsbench_dataset(
        "i18_val", fake.root, subsets=("v1s",), splits=("val",)
    )
    register_avsbench.register_avsbench_dataset(
        "i18_empty", fake.root, subsets=("v2",), splits=("val",)
    )
    try:
        with pytest.raises(DatasetError) as info:
            load_checked("i18_val", "DATASETS.TEST")
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith("DATASETS.TEST 'i18_val': clip 'fakev1sval000_0' (metadata.csv")
        assert "frames numbered [0, 3, 4]" in message and "(and 1 more problem)" in message
        assert f"python -m ovavss_d2.data.validate {fake.root} --class-list" in message
        with pytest.raises(DatasetError, match="'i18_empty': no clips of split val, subsets v2"):
            load_checked("i18_empty", "DATASETS.TEST")
        with pytest.raises(DatasetError, match=r"'i18_vall' is not registered \(did you mean i18"):
            load_checked("i18_vall", "DATASETS.TEST")
    finally:
        for name in ("i18_val", "i18_empty"):
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
    assert one_line(ValueError("3 problems:\n  a\n  b\n  ... and 5 more")) == (
        "3 problems: a (and 6 more problems)"
    )
    # A DataLoader worker's error arrives with the worker's traceback in its message.
    wrapped = (
        "Caught DatasetError in DataLoader worker process 0.\nOriginal Traceback (most recent "
        "call last):\n  File \"x.py\", line 1\nm.DatasetError: clip 'c': f.png: bad\n"
    )
    assert str(DatasetError(wrapped)) == "clip 'c': f.png: bad"


def test_report_clip_errors():
    from ovavss_d2.data.dataset_checks import DatasetError, ReportClipErrors

    clip = {"clip_id": "c1", "file_names": ["/d/0.jpg"], "sem_seg_file_names": [None]}
    clip["audio_file_name"] = "/d/audio.wav"

    def unreadable(d):
        raise ValueError("/d/audio.wav: cannot read audio (Format not recognised.)")

    def bug(d):
        raise ValueError("operands could not be broadcast together")

    with pytest.raises(DatasetError) as info:
        ReportClipErrors(unreadable)(clip)
    assert str(info.value) == "clip 'c1': /d/audio.wav: cannot read audio (Format not recognised.)"
    with pytest.raises(ValueError, match="broadcast") as info:
        ReportClipErrors(bug)(clip)
    assert not isinstance(info.value, DatasetError)  # not a file's problem: keeps its traceback
