"""Reproducible AVSS-Synth builds: the manifest (a hash of every written file, the versions used,
the fingerprint), builds with different worker counts that share a fingerprint, ``--verify``
finding modified, missing and extra files, and stems whose bytes do not carry the time of writing.
Tiny builds on the fake media of conftest.py."""

import json
from pathlib import Path

import numpy as np
import pytest

from avss_synth import build_avss_synth
from avss_synth.manifest import MANIFEST, file_hashes, fingerprint, read_manifest, verify
from avss_synth.variants import write_float_wav

COUNTS = {"train": 3, "val": 2, "test": 3}


def _build(root: Path, media_dirs, workers: int) -> Path:
    build_avss_synth(
        root,
        clips=COUNTS,
        size=(40, 32),
        sample_rate=8000,
        stamps_dir=media_dirs[0],
        backgrounds_dir=media_dirs[1],
        workers=workers,
        variants={"clean": None, "snr10": 10.0},
        write_stems=True,
    )
    return root


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory, media_dirs) -> Path:
    return _build(tmp_path_factory.mktemp("repro") / "w1", media_dirs, workers=1)


def test_manifest_hashes_every_file(one_worker):
    manifest = read_manifest(one_worker)
    on_disk = sorted(
        p.relative_to(one_worker).as_posix()
        for p in one_worker.rglob("*")
        if p.is_file() and p.name != MANIFEST
    )
    assert sorted(manifest["files"]) == on_disk
    assert any(k.startswith("stems/") for k in on_disk)
    assert any(k.startswith("variants/test_clean/") for k in on_disk)
    assert manifest["fingerprint"] == fingerprint(manifest["files"])
    assert manifest["arguments"]["clips"] == COUNTS and manifest["arguments"]["seed"] == 0
    versions = manifest["versions"]
    assert set(versions["media_packages"]) == {"tuxpaint-stamps-default", "opencv-doc"}
    assert {"numpy", "pillow", "soundfile", "torchaudio"} <= set(versions["python_packages"])
    media = manifest["media"]
    assert media["fingerprint"] == fingerprint(media["files"]) and len(media["files"]) > 40
    assert not any(name.startswith("/") for name in media["files"])  # short, machine-free names


def test_worker_counts_give_the_same_fingerprint(one_worker, media_dirs, tmp_path):
    """The same clips built by one process and by two share every hash, stems included."""
    two = _build(tmp_path / "w2", media_dirs, workers=2)
    a, b = read_manifest(one_worker), read_manifest(two)
    assert a["files"] == b["files"]
    assert a["fingerprint"] == b["fingerprint"]
    assert a["arguments"]["workers"] == 1 and b["arguments"]["workers"] == 2


def test_float_stems_carry_no_timestamp(tmp_path):
    """libsndfile's PEAK chunk holds the time of writing; the stems are written without it."""
    samples = np.linspace(-0.5, 0.5, 400)
    write_float_wav(tmp_path / "a.wav", samples, 8000)
    data = (tmp_path / "a.wav").read_bytes()
    assert b"PEAK" not in data and b"data" in data
    import soundfile as sf

    back, sr = sf.read(tmp_path / "a.wav", dtype="float32")
    assert sr == 8000 and np.array_equal(back, samples.astype(np.float32))


def test_verify_finds_modified_missing_and_extra_files(one_worker, tmp_path, capsys, load_script):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(one_worker, root)  # hard links become copies: the hashes stay the same
    cli = load_script("datasets/prepare_avss_synth.py")
    expected = read_manifest(root)["fingerprint"]
    assert cli.main(["--output", str(root), "--verify"]) == 0
    out = capsys.readouterr().out
    assert f"fingerprint: {expected[:16]}" in out and "ok:" in out
    assert cli.main(["--output", str(root), "--verify", "--expect", expected[:16]]) == 0
    assert cli.main(["--output", str(root), "--verify", "--expect", "0" * 16]) == 1
    capsys.readouterr()

    frame = sorted(root.glob("v1*/*/frames/0.jpg"))[0]
    data = bytearray(frame.read_bytes())
    data[len(data) // 2] ^= 1  # one bit of one frame
    frame.write_bytes(bytes(data))
    (root / "label2idx.json").unlink()
    (root / "notes.txt").write_text("added by hand\n")
    result = verify(root)
    assert result["changed"] == [frame.relative_to(root).as_posix()]
    assert result["missing"] == ["label2idx.json"] and result["extra"] == ["notes.txt"]
    assert result["fingerprint"] != expected == result["expected"]
    assert cli.main(["--output", str(root), "--verify"]) == 1
    out = capsys.readouterr().out
    assert f"changed: {frame.relative_to(root).as_posix()}" in out
    assert "missing: label2idx.json" in out and "extra: notes.txt" in out
    assert cli.main(["--output", str(tmp_path / "nothing"), "--verify"]) == 2


def test_cli_prints_the_fingerprint(media_dirs, tmp_path, capsys, load_script):
    out = tmp_path / "cli"
    args = ["--output", str(out), "--train-clips", "1", "--val-clips", "1", "--test-clips", "1"]
    args += ["--size", "40x32", "--sample-rate", "8000", "--workers", "1", "--variants", ""]
    args += ["--stamps-dir", str(media_dirs[0]), "--backgrounds-dir", str(media_dirs[1])]
    assert load_script("datasets/prepare_avss_synth.py").main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"fingerprint: {fingerprint(file_hashes(out))[:16]}"
    assert json.loads((out / MANIFEST).read_text())["fingerprint"].startswith(lines[-1][-16:])


def test_background_resampling_in_numpy():
    """The camera crops and the blob backgrounds are resampled by NumPy code (OpenCV 4 and 5
    warp differently): bilinear values by hand, mirrored borders, cv2.INTER_CUBIC's kernel."""
    import cv2

    from avss_synth.backgrounds import resize_bicubic, sample_bilinear

    image = np.array([[0.0, 10.0], [20.0, 30.0]])[..., None]
    out = sample_bilinear(image, np.array([0.0, 0.5, 0.25]), np.array([0.0, 0.5]))[..., 0]
    assert np.allclose(out, [[0.0, 5.0, 2.5], [10.0, 15.0, 12.5]])
    row = np.arange(4.0)[None, :, None]  # 0 1 2 3, mirrored: ... 1 0 | 0 1 2 3 | 3 2 ...
    out = sample_bilinear(row, np.array([-1.0, -0.5, 3.5, 4.0, 5.0]), np.array([0.0]))[0, :, 0]
    assert np.allclose(out, [0.0, 0.0, 3.0, 3.0, 2.0])
    grid = np.random.default_rng(0).uniform(0, 255, (5, 4, 3)).astype(np.float32)
    ours = resize_bicubic(grid, (33, 41))
    assert ours.shape == (41, 33, 3) and ours.dtype == np.float32
    assert np.abs(ours - cv2.resize(grid, (33, 41), interpolation=cv2.INTER_CUBIC)).max() < 1e-3
    assert np.allclose(resize_bicubic(np.full((3, 3, 1), 7.0), (8, 8)), 7.0)
