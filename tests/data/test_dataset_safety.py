"""Clip folders linked outside the dataset root, the dataset keys applied by train_net.py, and the
once-per-clip audio-length log line."""

import importlib.util
import logging
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
