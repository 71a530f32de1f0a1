"""Clip folders linked outside the dataset root, the dataset keys applied by train_net.py, and the
once-per-clip audio-length log line."""

import importlib.util
import logging
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from ovavss_d2.data import audio as audio_module
from ovavss_d2.data.audio import AudioParams, audio_length_summary, frame_log_mel_patches
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
def train_net():
    spec = importlib.util.spec_from_file_location("train_net_ds", ROOT / "train_net.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_net_ds"] = module
    spec.loader.exec_module(module)
    return module


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


def test_audio_length_logged_once_per_clip(caplog, monkeypatch):
    monkeypatch.setattr(audio_module, "_LENGTH_LOGGED", set())
    monkeypatch.setattr(audio_module, "_LENGTH_MISMATCHES", {})
    params = AudioParams()
    short = np.zeros(params.sample_rate * 2, dtype=np.float32)  # 2 s for a 5-frame clip
    audio_module.logger.addHandler(caplog.handler)  # "ovavss_d2" may not propagate (setup_logger)
    try:
        with caplog.at_level(logging.DEBUG, logger="ovavss_d2.data.audio"):
            for _ in range(4):  # the clip loaded 4 times (epochs)
                frame_log_mel_patches(short, params.sample_rate, 5, params, source="clip_a.wav")
            frame_log_mel_patches(short, params.sample_rate, 5, params, source="clip_b.wav")
    finally:
        audio_module.logger.removeHandler(caplog.handler)
    records = {id(r): r for r in caplog.records}.values()  # seen by both handlers when propagated
    infos = [r for r in records if r.levelno == logging.INFO and "padded" in r.getMessage()]
    assert [r.args[0] for r in infos] == ["clip_a.wav", "clip_b.wav"], [
        r.getMessage() for r in infos
    ]
    assert audio_length_summary() == (
        "2 clips had audio of another length than their frames (2 zero-padded, 0 truncated)"
    )
    assert audio_length_summary() is None  # counted per evaluation / training


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


def test_validator_fails_an_empty_dataset(tmp_path, capsys):
    from ovavss_d2.data.datasets.avsbench_format import write_metadata
    from ovavss_d2.data.validate import main

    root = tmp_path / "empty"
    root.mkdir()
    write_metadata(root, [])
    report = validate_dataset(root)
    assert report.messages("metadata") == [f"{root / 'metadata.csv'}: no clips (no rows)"]
    assert main([str(root), "--no-audio"]) == 1
    assert "1 problems (1 metadata)" in capsys.readouterr().out


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


def test_train_loader_refuses_a_batch_of_zero():
    from detectron2.config import get_cfg

    from ovavss_d2.data.samplers import build_resumable_train_loader

    cfg = get_cfg()
    cfg.SOLVER.IMS_PER_BATCH = 0
    with pytest.raises(ValueError, match="SOLVER.IMS_PER_BATCH 0: must be at least 1"):
        build_resumable_train_loader(cfg, [{}], lambda d: d)
