"""Bad input: validate reports every problem; registration and the mapper fail naming the file."""

import csv
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from detectron2.data import DatasetCatalog
from detectron2.data import transforms as T
from PIL import Image

from ovavss_d2.data import AVSSDatasetMapper
from ovavss_d2.data.datasets import (
    DatasetFormatError,
    load_avsbench_semantic,
    register_avsbench_dataset,
)
from ovavss_d2.data.validate import main as validate_main
from ovavss_d2.data.validate import validate_dataset
from ovavss_d2.utils.testing import make_fake_avsbench

GOOD_ROW = {"vid": "x", "s_min": 0, "s_sec": 0, "a_obj": "dog", "split": "val", "label": "v1m"}


def _append_rows(root, rows):
    with open(root / "metadata.csv", "a", newline="") as f:
        writer = csv.DictWriter(
            f, fieldnames=["vid", "uid", "s_min", "s_sec", "a_obj", "split", "label"]
        )
        writer.writerows(rows)


def _clip(fake, subset, split, i):
    return fake.select(subset, split)[i].clip_dir


def _break_everything(fake):
    """Apply one of each kind of damage; return the expected message fragments (kind, fragment)."""
    root = fake.root
    expected = []
    c = _clip(fake, "v1m", "val", 0)
    os.remove(c / "frames" / "2.jpg")
    expected.append(
        ("frame", f"{c / 'frames'}: found 4 frames numbered [0, 1, 3, 4], but a v1m clip has 5")
    )
    c = _clip(fake, "v1m", "val", 1)
    Image.new("RGB", (64, 48)).save(c / "frames" / "5.jpg")
    expected.append(
        ("frame", f"{c / 'frames'}: found 6 frames numbered [0, 1, 2, 3, 4, 5], but a v1m clip")
    )
    c = _clip(fake, "v2", "val", 0)
    (c / "frames" / "3.jpg").write_bytes(b"garbage")
    expected.append(("frame", f"{c / 'frames' / '3.jpg'}: cannot read frame image"))
    c = _clip(fake, "v1s", "train", 0)
    Image.new("RGB", (32, 48)).save(c / "frames" / "3.jpg")
    expected.append(("frame", f"{c}: frames have different sizes [(48, 32), (48, 64)] (HxW)"))
    c = _clip(fake, "v2", "val", 1)
    os.remove(c / "labels_rgb" / "4.png")
    expected.append(("label", f"{c / 'labels_rgb' / '4.png'}: label file not found"))
    c = _clip(fake, "v1m", "train", 0)
    rgb = np.array(Image.open(c / "labels_rgb" / "0.png"))
    rgb[0, 0] = (1, 2, 3)
    Image.fromarray(rgb).save(c / "labels_rgb" / "0.png")
    expected.append(
        (
            "label",
            f"{c / 'labels_rgb' / '0.png'}: 1 pixels have colours outside the 71-class palette",
        )
    )
    c = _clip(fake, "v1m", "train", 1)
    (c / "labels_rgb" / "1.png").write_bytes(b"garbage")
    expected.append(("label", f"{c / 'labels_rgb' / '1.png'}: cannot read label image"))
    c = _clip(fake, "v1s", "val", 1)
    Image.open(c / "labels_rgb" / "0.png").resize((32, 24)).save(c / "labels_rgb" / "0.png")
    expected.append(
        (
            "label",
            f"{c / 'labels_rgb' / '0.png'}: label size 32x24 (WxH) differs from its frame's 64x48",
        )
    )
    c = _clip(fake, "v2", "train", 0)
    os.remove(c / "audio.wav")
    expected.append(("audio", f"{c}: no audio file"))
    c = _clip(fake, "v2", "train", 1)
    (c / "audio.wav").write_bytes(b"RIFFgarbage")
    expected.append(("audio", f"{c / 'audio.wav'}: cannot read audio"))
    c = _clip(fake, "v1s", "val", 0)
    sf.write(
        c / "audio.wav", np.array([[0.0], [np.nan]] * 100, dtype=np.float32), 16000, subtype="FLOAT"
    )
    expected.append(("audio", f"{c / 'audio.wav'}: audio holds 100 NaN or infinite samples"))

    existing = fake.select("v2", "val")[0].uid
    bad_rows = [
        (
            dict(GOOD_ROW, uid="u_dragon", a_obj="dog_dragon"),
            "classes ['dragon'] are not in the class list",
        ),
        (dict(GOOD_ROW, uid="u_dev", split="dev"), "unknown split 'dev'"),
        (dict(GOOD_ROW, uid="u_v3", label="v3"), "unknown subset (label column) 'v3'"),
        (
            dict(GOOD_ROW, uid="../escape"),
            "uid '../escape' contains '..' (escapes the dataset root)",
        ),
        (dict(GOOD_ROW, uid="/etc"), "uid '/etc' is an absolute path (escapes the dataset root)"),
        (dict(GOOD_ROW, uid="a/b"), "uid 'a/b' is not a single folder name"),
        (dict(GOOD_ROW, uid=existing, label="v2"), f"uid '{existing}' of subset v2 repeats line"),
        (dict(GOOD_ROW, uid="u_empty", a_obj=""), "a_obj names no class"),
    ]
    _append_rows(root, [r for r, _ in bad_rows])
    first_line = len(fake.clips) + 2
    for k, (_, fragment) in enumerate(bad_rows):
        expected.append(("metadata", f"{root / 'metadata.csv'}:{first_line + k}: {fragment}"))
    _append_rows(root, [dict(GOOD_ROW, uid="u_nofolder")])
    expected.append(("clip", f"{root / 'v1m' / 'u_nofolder'}: clip folder not found"))
    return expected


@pytest.fixture
def broken(tmp_path):
    fake = make_fake_avsbench(
        tmp_path / "AVSBench-semantic", clips_per_split=2, splits=("train", "val")
    )
    return fake, _break_everything(fake)


def test_validate_reports_every_problem(broken):
    fake, expected = broken
    report = validate_dataset(fake.root)
    assert not report.ok
    for kind, fragment in expected:
        hits = [m for m in report.messages(kind) if fragment in m]
        assert len(hits) == 1, (kind, fragment, report.messages(kind))
    assert len(report.problems) == len(expected), report.problems
    assert report.num_clips == len(fake.clips) + 1
    assert report.summary().startswith(
        f"{fake.root}: {len(expected)} problems (3 audio, 1 clip, 4 frame, 4 label, 8 metadata)"
    )


def test_validate_parallel_gives_the_same_report(broken):
    fake, _ = broken
    assert (
        validate_dataset(fake.root, num_workers=2).problems == validate_dataset(fake.root).problems
    )


def test_validate_command(broken, tmp_path, capsys):
    fake, expected = broken
    assert validate_main([str(fake.root)]) == 1
    out = capsys.readouterr().out
    assert f"{len(expected)} problems" in out and "[metadata]" in out and "[audio]" in out
    clean = make_fake_avsbench(tmp_path / "clean", subsets=("v1s",))
    result = subprocess.run(
        [sys.executable, "-m", "ovavss_d2.data.validate", str(clean.root), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == f"{clean.root}: OK (3 clips checked)"
    assert validate_main([str(clean.root), "--class-list", "no_such_list.txt"]) == 2


def test_validate_wrong_class_list(tmp_path):
    fake = make_fake_avsbench(
        tmp_path / "s",
        classes="avss_synth.txt",
        split_file="avss_synth_split.json",
        subsets=("v1m",),
    )
    report = validate_dataset(fake.root)  # the 70-class list does not describe this root
    assert any(
        "label2idx.json: label indices do not match" in m for m in report.messages("metadata")
    )
    assert validate_dataset(fake.root, class_list="avss_synth.txt").ok


def test_registration_fails_naming_the_file(broken, unique_prefix, caplog):
    fake, _ = broken
    with pytest.raises(
        DatasetFormatError,
        match=r"(?s)8 problems in metadata .*metadata\.csv:\d+: classes \['dragon'\]",
    ):
        load_avsbench_semantic(fake.root)
    # with the metadata repaired, the first clip with missing files stops the loading ...
    lines = (fake.root / "metadata.csv").read_text().splitlines()[: len(fake.clips) + 1]
    (fake.root / "metadata.csv").write_text("\n".join(lines) + "\n")
    clip = fake.select("v1m", "val")[0]
    with pytest.raises(
        DatasetFormatError,
        match=rf"(?s)clip '{clip.uid}' .*\n  .*{clip.uid}/frames: found 4 frames",
    ):
        load_avsbench_semantic(fake.root, subsets=("v1m",), splits=("val",))
    # ... unless skipping is configured: then the skipped clips are counted and logged
    name = unique_prefix + "skip"
    register_avsbench_dataset(name, fake.root, skip_bad_clips=True)
    with caplog.at_level(logging.WARNING):
        dicts = DatasetCatalog.get(name)
    # skipped: two clips with a wrong frame count, one without audio, one missing a label file
    assert len(dicts) == len(fake.clips) - 4
    assert f"{name}: skipped 4 clips with missing files (skip_bad_clips=True)" in caplog.text


def test_mapper_fails_naming_the_file(tmp_path):
    fake = make_fake_avsbench(tmp_path / "m", subsets=("v1m",), splits=("val",), clips_per_split=1)
    (d,) = load_avsbench_semantic(fake.root)
    mapper = AVSSDatasetMapper(
        False, augmentations=[T.ResizeShortestEdge(48, 1000)], label_num_classes=71
    )
    assert mapper(d)["images"].shape == (5, 3, 48, 64)
    c = fake.clips[0].clip_dir

    def fails(exc, pattern, **changes):
        with pytest.raises(exc, match=pattern):
            mapper(dict(d, **changes))

    fails(ValueError, r"frame size 64x48 \(WxH\) differs from the clip's 65x48", width=65)
    (c / "frames" / "1.jpg").write_bytes(b"garbage")
    fails(ValueError, rf"{c / 'frames' / '1.jpg'}: cannot read frame image")
    os.remove(c / "frames" / "1.jpg")
    fails(FileNotFoundError, rf"frame not found: {c / 'frames' / '1.jpg'}")
    Image.new("RGB", (64, 48)).save(c / "frames" / "1.jpg")
    Image.fromarray(np.full((48, 64, 3), 7, dtype=np.uint8)).save(c / "labels_rgb" / "2.png")
    fails(
        ValueError,
        rf"{c / 'labels_rgb' / '2.png'}: 3072 pixels have colours outside the 71-class palette",
    )
    Image.new("RGB", (60, 48)).save(c / "labels_rgb" / "2.png")
    fails(ValueError, rf"{c / 'labels_rgb' / '2.png'}: label size 60x48 \(WxH\) differs")
    Image.new("RGB", (64, 48)).save(c / "labels_rgb" / "2.png")
    # a colour of the 256-entry palette beyond the 71 classes
    from ovavss_d2.data.class_lists import encode_label_rgb

    Image.fromarray(encode_label_rgb(np.full((48, 64), 90), 256)).save(c / "labels_rgb" / "3.png")
    fails(
        ValueError, rf"{c / 'labels_rgb' / '3.png'}: 3072 pixels have colours outside the 71-class"
    )
    Image.new("RGB", (64, 48)).save(c / "labels_rgb" / "3.png")
    os.remove(c / "audio.wav")
    fails(FileNotFoundError, rf"audio file not found: {c / 'audio.wav'}")
    fails(ValueError, "1 label entries", sem_seg_file_names=[None])


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
