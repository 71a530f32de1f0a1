"""AVSS-Synth-Long generator on tiny fake media: layout, labels follow the sounding stretches,
determinism, and the registered loader."""

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from avss_synth.long_clips import build_avss_synth_long
from avss_synth.media import MediaIndex
from ovavss_d2.data.class_lists import decode_label_rgb, load_class_list
from ovavss_d2.data.datasets.avss_synth_long import load_avss_synth_long

CLASSES = load_class_list("avss_synth.txt")
SIZE, SR = (48, 40), 8000
COUNTS = {"val": 1, "test": 2}


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> MediaIndex:
    """One ellipse stamp and one tone per class, one noise background."""
    root = tmp_path_factory.mktemp("media")
    stamps, sounds = {}, {}
    for i, key in enumerate(CLASSES.names[1:]):
        yy, xx = np.mgrid[:30, :24]
        rgba = np.zeros((30, 24, 4), dtype=np.uint8)
        rgba[..., :3] = (37 * i) % 256
        rgba[..., 3] = np.where(((yy - 15) / 15) ** 2 + ((xx - 12) / 12) ** 2 <= 1, 255, 0)
        Image.fromarray(rgba, "RGBA").save(root / f"{key}.png")
        t = np.arange(SR) / SR
        sf.write(root / f"{key}.wav", (0.5 * np.sin(2 * np.pi * (150 + 20 * i) * t)), SR)
        stamps[key], sounds[key] = (str(root / f"{key}.png"),), (str(root / f"{key}.wav"),)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)).save(root / "bg.jpg")
    return MediaIndex(stamps, sounds, (str(root / "bg.jpg"),), ((str(root), "fake"),))


def build(root: Path, media: MediaIndex, **kwargs) -> Path:
    build_avss_synth_long(
        root, clips=COUNTS, seconds=(6, 8), size=SIZE, sample_rate=SR, media=media, **kwargs
    )
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory, media) -> Path:
    return build(tmp_path_factory.mktemp("long") / "AVSS-Synth-Long", media)


def test_layout_and_labels_follow_the_stretches(built):
    rows = list(csv.DictReader(open(built / "metadata.csv")))
    assert [r["split"] for r in rows] == ["val", "test", "test"]
    records = [json.loads(line) for line in open(built / "long_info.jsonl")]
    index = {k: i for i, k in enumerate(CLASSES.names)}
    shown = heard = 0
    for row, record in zip(rows, records):
        n = int(row["num_frames"])
        assert 6 <= n <= 8 and record["num_frames"] == n
        keys = [o["key"] for o in record["objects"]]
        assert len(set(keys)) == len(keys) and 2 <= len(keys) <= 3  # distinct classes
        assert row["a_obj"].split("_") == sorted(keys, key=index.__getitem__)
        clip = built / row["uid"]
        assert len(list((clip / "frames").glob("*.jpg"))) == n
        audio, rate = sf.read(clip / "audio.wav")
        assert rate == SR and len(audio) == n * SR
        for t in range(n):
            rgb = np.asarray(Image.open(clip / "labels_rgb" / f"{t}.png").convert("RGB"))
            present = set(np.unique(decode_label_rgb(rgb, len(CLASSES))).tolist()) - {0}
            sounding = {index[o["key"]] for o in record["objects"] if o["sounding"][t]}
            assert present <= sounding  # a silent object is background
            shown += len(present)
            heard += len(sounding)
    assert heard and shown >= 0.7 * heard  # a sounding object is labelled (unless occluded)


def test_same_seed_same_files(tmp_path, media, built):
    again = build(tmp_path / "again", media)

    def digest(root):
        return {
            str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    assert digest(again) == digest(built)
    with pytest.raises(FileExistsError, match="--force"):
        build(again, media)
    (again / "keep.txt").write_text("not ours")
    build(again, media, force=True)
    assert (again / "keep.txt").exists()  # --force removes only the builder's own files


def test_manifest_and_verify(built, tmp_path, capsys, load_script):
    """The long build's manifest.json lists every file; --verify passes, then finds a change."""
    import shutil

    from avss_synth.manifest import read_manifest

    manifest = read_manifest(built)
    files = sorted(
        p.relative_to(built).as_posix()
        for p in built.rglob("*")
        if p.is_file() and p.name != "manifest.json"
    )
    assert sorted(manifest["files"]) == files and manifest["generator"] == "avss_synth_long"
    assert manifest["arguments"]["seconds"] == [6, 8]
    cli = load_script("datasets/prepare_avss_synth_long.py", "prepare_long")
    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    assert cli.main(["--output", str(copy), "--verify"]) == 0
    assert f"fingerprint: {manifest['fingerprint'][:16]}" in capsys.readouterr().out
    (copy / "metadata.csv").write_text("uid\n")
    assert cli.main(["--output", str(copy), "--verify"]) == 1
    assert "changed: metadata.csv" in capsys.readouterr().out


def test_loader(built):
    dicts = load_avss_synth_long(str(built), "test")
    assert [d["clip_id"] for d in dicts] == ["long_test_000", "long_test_001"]
    for d in dicts:
        assert len(d["file_names"]) == len(d["sem_seg_file_names"]) >= 6
        assert (d["height"], d["width"]) == (SIZE[1], SIZE[0])
        assert Path(d["audio_file_name"]).name == "audio.wav"
    with pytest.raises(FileNotFoundError, match="prepare_avss_synth_long.py"):
        load_avss_synth_long(str(built / "missing"), "test")
