"""Clip folders and files linked outside the dataset root (registration, validator) and the dataset
keys applied by train_net.py."""

import os
import shutil
from pathlib import Path

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from ovavss_d2.data.datasets import avsbench, register_avsbench
from ovavss_d2.data.datasets.avsbench_format import DatasetFormatError
from ovavss_d2.data.validate import validate_dataset
from ovavss_d2.utils.testing import make_fake_avsbench

ROOT = Path(__file__).resolve().parents[2]
INSTANT_TEST = ROOT / "configs/avss_synth/ovavss_effnet_yamnet_minilm_instant_test.yaml"


@pytest.fixture
def linked_root(tmp_path):
    """A root whose first v1s train clip is a symlink to a folder outside the root."""
    fake = make_fake_avsbench(tmp_path / "AVSBench-semantic", clips_per_split=1, subsets=("v1s",))
    clip = fake.select("v1s", "train")[0]
    elsewhere = tmp_path / "elsewhere" / clip.uid
    elsewhere.parent.mkdir()
    shutil.move(str(clip.clip_dir), elsewhere)
    clip.clip_dir.symlink_to(elsewhere, target_is_directory=True)
    return fake.root, clip


def test_registration_refuses_links_outside_the_root(linked_root):
    root, clip = linked_root
    with pytest.raises(DatasetFormatError, match="outside the dataset root"):
        avsbench.load_avsbench_semantic(root, subsets=("v1s",), splits=("train",))
    kept = avsbench.load_avsbench_semantic(
        root, subsets=("v1s",), splits=("train",), skip_bad_clips=True
    )
    assert kept == []
    allowed = avsbench.load_avsbench_semantic(
        root, subsets=("v1s",), splits=("train",), allow_outside_root=True
    )
    assert [d["clip_id"] for d in allowed] == [clip.uid]


def test_validator_reports_links_outside_the_root(linked_root):
    root, clip = linked_root
    report = validate_dataset(root)
    messages = report.messages("clip")
    assert any(clip.uid in m and "outside the dataset root" in m for m in messages), messages


def test_link_inside_the_root_is_fine(tmp_path):
    fake = make_fake_avsbench(tmp_path / "AVSBench-semantic", clips_per_split=1, subsets=("v1s",))
    clip = fake.select("v1s", "train")[0]
    moved = fake.root / "v1s" / "stored_here"
    shutil.move(str(clip.clip_dir), moved)
    clip.clip_dir.symlink_to(moved, target_is_directory=True)
    dicts = avsbench.load_avsbench_semantic(fake.root, subsets=("v1s",), splits=("train",))
    assert [d["clip_id"] for d in dicts] == [clip.uid]


@pytest.fixture
def train_net(load_script):
    return load_script("train_net.py", "train_net_ds", register=True)


def test_train_net_applies_skip_bad_clips(train_net, tmp_path, monkeypatch):
    fake = make_fake_avsbench(tmp_path / "AVSBench-semantic", clips_per_split=2, subsets=("v1s",))
    bad = fake.select("v1s", "test")[0]
    for wav in bad.clip_dir.glob("audio.*"):
        wav.unlink()
    synth = make_fake_avsbench(
        tmp_path / "AVSS-Synth",
        clips_per_split={("v1s", "test"): 2},
        subsets=("v1s",),
        classes="avss_synth.txt",
        split_file="avss_synth_split.json",
    )
    bad_synth = synth.select("v1s", "test")[0]
    (bad_synth.clip_dir / "audio.wav").unlink()
    original_root = register_avsbench._ROOT
    monkeypatch.setattr(register_avsbench, "_ROOT", str(tmp_path))
    args = train_net.get_parser().parse_args(
        [
            "--config-file",
            str(INSTANT_TEST),
            "DATASETS.SKIP_BAD_CLIPS",
            "True",
            "OUTPUT_DIR",
            str(tmp_path / "out"),
        ]
    )
    try:
        train_net.setup(args)
        ids = [d["clip_id"] for d in DatasetCatalog.get("avss_synth_test")]  # AVSS-Synth too
        assert len(ids) == 1 and bad_synth.uid not in ids
        for name in ("avss_v1s_test", "avs_s4_test"):  # semantic and binary
            ids = [d["clip_id"] for d in DatasetCatalog.get(name)]
            assert len(ids) == 1 and bad.uid not in ids, name
    finally:  # back to the registration of the real root
        names = [f"avss_{a}_{s}" for a in ("v1s", "v1m", "v2", "all") for s in avsbench.SPLITS]
        names += ["avsbench_ov_train_base", "avsbench_ov_val", "avsbench_ov_test"]
        names += [f"{p}_{s}" for p in ("avs_s4", "avs_ms3") for s in avsbench.SPLITS]
        for name in names:
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
        register_avsbench.register_all_avsbench(original_root)
        monkeypatch.setattr(register_avsbench, "_ROOT", original_root)
        register_avsbench._reregister_avss_synth(False, False)  # re-registered with the flag too


# -- issue 18: empty datasets, frames / labels / audio outside the root, one-line errors ---------


def _link_outside(clip, part, tmp_path):
    """Move a clip's ``part`` (a folder or file below it) outside the root and link it back."""
    inside = clip.clip_dir / part
    outside = tmp_path / "elsewhere" / part.replace("/", "_")
    outside.parent.mkdir(exist_ok=True)
    shutil.move(str(inside), outside)
    inside.symlink_to(outside, target_is_directory=outside.is_dir())
    return inside


@pytest.mark.parametrize(
    "part, kind, what",
    [
        ("frames", "frame", "frames folder"),
        ("frames/2.jpg", "frame", "frame"),
        ("labels_rgb", "label", "labels folder"),
        ("labels_rgb/0.png", "label", "label"),
        ("audio.wav", "audio", "audio file"),
    ],
)
def test_files_linked_outside_the_root(part, kind, what, tmp_path):
    fake = make_fake_avsbench(tmp_path / "AVSBench-semantic", clips_per_split=1, subsets=("v1s",))
    clip = fake.select("v1s", "train")[0]
    link = _link_outside(clip, part, tmp_path)
    expected = f"{link}: the {what} resolves to '{os.path.realpath(link)}', outside the dataset"
    messages = validate_dataset(fake.root).messages(kind)
    assert any(m.startswith(expected) for m in messages), messages
    assert not validate_dataset(fake.root).messages("clip")
    # Nothing else is said of a folder linked outside (its files are not listed through it).
    assert len(messages) == 1, messages
    load = dict(subsets=("v1s",), splits=("train",))
    with pytest.raises(DatasetFormatError, match="outside the dataset root") as info:
        avsbench.load_avsbench_semantic(fake.root, **load)
    assert str(link) in str(info.value)
    assert avsbench.load_avsbench_semantic(fake.root, skip_bad_clips=True, **load) == []
    allowed = avsbench.load_avsbench_semantic(fake.root, allow_outside_root=True, **load)
    assert [d["clip_id"] for d in allowed] == [clip.uid]
    assert validate_dataset(fake.root).ok is False


def test_file_linked_inside_the_root_is_fine(tmp_path):
    fake = make_fake_avsbench(tmp_path / "AVSBench-semantic", clips_per_split=1, subsets=("v1s",))
    clip = fake.select("v1s", "train")[0]
    frame = clip.clip_dir / "frames" / "1.jpg"
    stored = fake.root / "stored_1.jpg"
    shutil.move(str(frame), stored)
    frame.symlink_to(stored)
    assert validate_dataset(fake.root).ok
    dicts = avsbench.load_avsbench_semantic(fake.root, subsets=("v1s",), splits=("train",))
    assert dicts[0]["file_names"][1] == str(frame)
