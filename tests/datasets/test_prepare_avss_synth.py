"""AVSS-Synth generator: determinism, on-disk format, labelling rules, loading through the
AVSBench-semantic loader, the command line. Runs on a tiny fake media tree (conftest.py; no Debian
package)."""

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from avss_synth import RETIRED_VERSION_ERROR, MediaError, build_avss_synth, index_media
from avss_synth.clips_v2 import source_track
from avss_synth.media import SOUND_CLASSES, STAMP_CLASSES
from avss_synth.objects import NUM_FRAMES, ClipPlan, ObjectPlan
from ovavss_d2.data.class_lists import decode_label_rgb, load_class_list, load_split

CLASSES = load_class_list("avss_synth.txt")
SPLIT = load_split("avss_synth_split.json", CLASSES)
BASE = {CLASSES.names[i] for i in SPLIT["base"]}
SIZE = (64, 48)
SR = 16000
COUNTS = {"train": 6, "val": 4, "test": 4}


def _build(out: Path, media_dirs, seed=0, workers=1) -> Path:
    stamps, backgrounds = media_dirs
    build_avss_synth(
        out,
        seed=seed,
        clips=COUNTS,
        size=SIZE,
        sample_rate=SR,
        stamps_dir=stamps,
        backgrounds_dir=backgrounds,
        workers=workers,
    )
    return out


def _digest(root: Path) -> dict:
    """sha256 of every written file (manifest.json, which records the worker count, left out)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory, media_dirs) -> Path:
    return _build(tmp_path_factory.mktemp("synth") / "AVSS-Synth", media_dirs)


def _silent(obj: dict) -> set:
    """Seconds in which a sounding object is silent (silent_seconds; v1 records: silent_second)."""
    return set(obj.get("silent_seconds") or []) | ({obj["silent_second"]} - {None})


def _metadata(root: Path):
    with open(root / "metadata.csv", newline="") as f:
        return list(csv.DictReader(f))


def _info(root: Path):
    return {
        r["uid"]: r for r in map(json.loads, (root / "synth_info.jsonl").read_text().splitlines())
    }


def test_class_list_and_split():
    keys = set(CLASSES.names[1:])
    assert CLASSES.names[0] == "background"
    assert keys == set(STAMP_CLASSES.values()) == set(SOUND_CLASSES.values())
    assert not any(rel.split("/")[-1].count("_desc") for rel in SOUND_CLASSES)
    novel = {CLASSES.names[i] for i in SPLIT["novel"]}
    assert BASE | novel == keys and 0.5 <= len(BASE) / len(keys) <= 0.7
    # some novel classes have a related base class, some do not
    assert {"violin", "horse", "sheep", "hen", "lion"} <= BASE
    assert {"cello", "donkey", "goat", "rooster", "tiger", "bassoon", "frog"} <= novel
    # AVSBench keys where AVSBench has the class
    avsbench = set(load_class_list("avsbench_semantic.txt").names)
    assert {"dog", "violin", "emergency-car", "goose", "drum"} <= keys & avsbench


def test_deterministic_and_independent_of_workers(built, media_dirs, tmp_path):
    again = _build(tmp_path / "again", media_dirs, workers=2)
    assert _digest(again) == _digest(built)
    other = _build(tmp_path / "other", media_dirs, seed=1)
    assert _digest(other) != _digest(built)


def test_format(built):
    rows = _metadata(built)
    assert list(rows[0]) == ["uid", "a_obj", "split", "label"]
    assert [sum(r["split"] == s for r in rows) for s in COUNTS] == list(COUNTS.values())
    label2idx = json.loads((built / "label2idx.json").read_text())
    assert list(label2idx) == list(CLASSES.names) and list(label2idx.values()) == list(
        range(len(CLASSES))
    )
    for row in rows:
        clip = built / row["label"] / row["uid"]
        keys = row["a_obj"].split("_")
        assert row["label"] == ("v1s" if len(keys) == 1 else "v1m") and 1 <= len(keys) <= 3
        assert sorted(p.name for p in (clip / "frames").iterdir()) == [f"{t}.jpg" for t in range(5)]
        labels = sorted(p.name for p in (clip / "labels_rgb").iterdir())
        single_train = row["label"] == "v1s" and row["split"] == "train"
        assert labels == (["0.png"] if single_train else [f"{t}.png" for t in range(5)])
        with Image.open(clip / "frames" / "0.jpg") as im:
            assert im.size == SIZE and im.mode == "RGB"
        wave, sr = sf.read(clip / "audio.wav")
        assert sr == SR and wave.shape == (NUM_FRAMES * SR,) and np.abs(wave).max() < 1
        if row["split"] == "train":
            assert set(keys) <= BASE


def test_labelling_rules(built):
    """Sounding objects are labelled with their class except in the second they stop; distractors
    (never sounding, never of a sounding class) and silent objects are background."""
    info = _info(built)
    for row in _metadata(built):
        clip, record = built / row["label"] / row["uid"], info[row["uid"]]
        objects = record["objects"]
        sounding = [o for o in objects if o["sounding"]]
        distractors = [o for o in objects if not o["sounding"]]
        assert sorted(o["key"] for o in sounding) == sorted(row["a_obj"].split("_"))
        assert not {o["key"] for o in distractors} & {o["key"] for o in sounding}
        assert len(distractors) <= 3
        if row["split"] == "train":
            assert {o["key"] for o in objects} <= BASE  # novel objects are never even visible
        for t in range(NUM_FRAMES):
            assert any(t not in _silent(o) for o in sounding)  # something sounds every second
            path = clip / "labels_rgb" / f"{t}.png"
            if not path.exists():
                continue
            label = decode_label_rgb(np.asarray(Image.open(path).convert("RGB")), len(CLASSES))
            present = set(np.unique(label).tolist()) - {0}
            expected = {CLASSES.index(o["key"]) for o in sounding if t not in _silent(o)}
            assert present == expected


def test_silent_second_is_muted(monkeypatch):
    import avss_synth.clips_v2 as clips_v2

    tone = np.sin(2 * np.pi * 440 * np.arange(SR // 2) / SR).astype(np.float32)
    monkeypatch.setattr(clips_v2, "load_sound", lambda path, sample_rate: tone)
    plan = ClipPlan("x", "val", "v1s", "", (0, 0, 1, 1), False)
    plan.objects = [ObjectPlan("dog", True, "", False, [], [], sound="tone", silent_seconds=[2])]
    wave = source_track(plan, SR)
    rms = [np.sqrt(np.mean(wave[t * SR + 400 : (t + 1) * SR - 400] ** 2)) for t in range(5)]
    assert rms[2] < 1e-3 and min(rms[:2] + rms[3:]) > 0.05


def test_loads_through_avsbench_loader(built):
    from ovavss_d2.data.datasets.avsbench import load_avsbench_semantic, register_avsbench_dataset

    dicts = load_avsbench_semantic(built, class_list="avss_synth.txt")
    assert len(dicts) == sum(COUNTS.values())
    for d in dicts:
        assert (d["height"], d["width"]) == (SIZE[1], SIZE[0]) and len(d["file_names"]) == 5
        if d["subset"] == "v1s" and d["split"] == "train":
            assert d["sem_seg_file_names"][1:] == [None] * 4
    from detectron2.data import DatasetCatalog, MetadataCatalog

    name = f"_test_avss_synth_tiny_train_{built.parent.name}"
    register_avsbench_dataset(
        name,
        built,
        splits=("train",),
        class_list="avss_synth.txt",
        split_file="avss_synth_split.json",
        drop_novel=True,
    )
    try:
        assert len(DatasetCatalog.get(name)) == COUNTS["train"]  # no training clip is dropped
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def test_validates(built):
    validate = pytest.importorskip("ovavss_d2.data.validate")
    report = validate.validate_dataset(built, class_list="avss_synth.txt")
    assert report.ok, report.problems
    assert report.num_clips == sum(COUNTS.values())


def test_missing_media_and_existing_output(media_dirs, tmp_path, caplog, load_script):
    keys = CLASSES.names[1:]
    with pytest.raises(MediaError, match="setup.sh --media"):
        index_media(keys, tmp_path / "no-stamps")
    empty = tmp_path / "empty-stamps"
    empty.mkdir()
    with pytest.raises(MediaError, match="lacks the stamp"):
        index_media(keys, empty, media_dirs[1])

    cli = load_script("datasets/prepare_avss_synth.py", "prepare")
    out = tmp_path / "out"
    args = [
        "--output",
        str(out),
        "--train-clips",
        "1",
        "--val-clips",
        "1",
        "--test-clips",
        "0",
        "--size",
        "40x32",
        "--stamps-dir",
        str(media_dirs[0]),
        "--backgrounds-dir",
        str(media_dirs[1]),
        "--workers",
        "1",
    ]
    assert cli.main(args) == 0
    assert len(_metadata(out)) == 2
    assert cli.main(args) == 2  # refuses to overwrite
    assert cli.main(args + ["--force", "--train-clips", "2"]) == 0
    assert len(_metadata(out)) == 3
    assert cli.main(args + ["--force", "--stamps-dir", str(tmp_path / "none")]) == 2
    assert cli.main(args + ["--force", "--version", "1"]) == 2  # retired, nothing written
    assert RETIRED_VERSION_ERROR in caplog.text and len(_metadata(out)) == 3
