"""ovavss_d2.data.datasets.avsbench_format: the checks at their edges (EXIF orientation, the v1s
annotation rule, short CSV rows, the exact problem kinds and messages of metadata.csv,
label2idx.json and clip folders), metadata uid checks, and the writers (what they write is what
the readers of the same module read)."""

import csv
import json
import os

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from ovavss_d2.data.class_lists import ClassList, decode_label_rgb, load_class_list
from ovavss_d2.data.datasets.avsbench_format import (
    DatasetFormatError,
    _uid_problem,
    annotated_by_design,
    check_label2idx,
    clip_folder,
    image_size,
    make_clip_dirs,
    read_metadata,
    scan_clip,
    write_audio,
    write_frame,
    write_label,
    write_label2idx,
    write_metadata,
)

CLASSES = ClassList(("background", "dog", "cat"), (("background",), ("dog",), ("cat",)), "x.txt")
HEADER = "vid,uid,s_min,s_sec,a_obj,split,label\n"


@pytest.mark.parametrize(
    "orientation, swapped", [(1, False), (3, False), (4, False)] + [(o, True) for o in (5, 6, 7, 8)]
)
def test_image_size_applies_exif_orientation(tmp_path, orientation, swapped):
    """Orientations 5-8 turn the image by 90 degrees: (height, width) as read_image gives it."""
    path = tmp_path / "f.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.zeros((10, 30, 3), dtype=np.uint8)).save(path, exif=exif)
    assert image_size(str(path)) == ((30, 10) if swapped else (10, 30))


def test_image_size_error_names_the_file(tmp_path):
    path = tmp_path / "f.jpg"
    path.write_bytes(b"not an image")
    with pytest.raises(DatasetFormatError, match=f"^{path}: cannot read frame image"):
        image_size(str(path))


def test_only_v1s_training_frames_after_the_first_are_unannotated():
    assert annotated_by_design("v1s", "train", 0)
    assert not annotated_by_design("v1s", "train", 1)
    assert annotated_by_design("v1s", "val", 3)
    assert annotated_by_design("v1m", "train", 3)
    assert annotated_by_design("v2", "train", 9)


def _metadata(tmp_path, body: str, header: str = HEADER):
    (tmp_path / "metadata.csv").write_text(header + body, encoding="utf-8")
    return tmp_path


def test_missing_metadata_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="metadata file not found: .*metadata.csv"):
        read_metadata(tmp_path, CLASSES)


def test_missing_columns_are_named(tmp_path):
    root = _metadata(tmp_path, "v,a,0,0,dog\n", header="vid,uid,s_min,s_sec,a_obj\n")
    with pytest.raises(DatasetFormatError, match=r"metadata.csv: missing columns \['split', "):
        read_metadata(root, CLASSES)


def test_unparsable_csv_is_named(tmp_path):
    root = _metadata(tmp_path, 'v,a,0,0,"' + "x" * 200000 + '",train,v1s\n')
    with pytest.raises(DatasetFormatError, match=r"metadata.csv: cannot parse CSV \(field larger"):
        read_metadata(root, CLASSES)


def test_short_row_is_a_problem_not_a_crash(tmp_path):
    """A row with fewer fields than the header: its missing values count as empty."""
    root = _metadata(tmp_path, "v,a,0,0,dog,train,v1s\nv\n")
    rows, problems = read_metadata(root, CLASSES)
    assert [r.uid for r in rows] == ["a"]
    line3 = [p.split(": ", 1)[1] for p in problems if ":3: " in p]
    assert line3 == [
        "unknown subset (label column) '', expected one of ['v1s', 'v1m', 'v2']",
        "unknown split '', expected one of ['train', 'val', 'test']",
        "empty uid",
        "a_obj names no class",
    ]


def test_label2idx_message_lists_the_first_three_differences(tmp_path):
    names = ["background", "cat", "dog", "cow", "eel", "fox"]
    (tmp_path / "label2idx.json").write_text(json.dumps({n: i for i, n in enumerate(names)}))
    classes = ClassList(
        ("background", "dog", "cat", "eel", "cow", "owl"), tuple((n,) for n in "abcdef"), "y.txt"
    )
    problem = check_label2idx(tmp_path, classes)
    assert problem.endswith(
        "label indices do not match the class list y.txt (6 vs 6 entries; first differences "
        "(index, file, list): [(1, 'cat', 'dog'), (2, 'dog', 'cat'), (3, 'cow', 'eel')])"
    )


def _clip(tmp_path, frames=(), labels=(), audio=True, label_dir=True):
    clip = tmp_path / "clip"
    (clip / "frames").mkdir(parents=True)
    for name in frames:
        (clip / "frames" / name).write_bytes(b"")
    if label_dir:
        (clip / "labels_rgb").mkdir()
        for t in labels:
            (clip / "labels_rgb" / f"{t}.png").write_bytes(b"")
    if audio:
        (clip / "audio.wav").write_bytes(b"")
    return str(clip)


def test_clip_problems_have_their_kind_and_message(tmp_path):
    clip = _clip(
        tmp_path,
        frames=["0.jpg", "0.png", "1.jpg", "cover.jpg", "7.txt"],
        labels=[0],
        audio=False,
    )
    out = scan_clip(clip, "v1s", "train")
    frames = os.path.join(clip, "frames")
    assert out.problems == [
        ("frame", f"{frames}: two files for frame 0"),
        (
            "frame",
            f"{frames}: found 2 frames numbered [0, 1], but a v1s clip has 5 frames "
            "numbered 0..4",
        ),
        ("audio", f"{clip}: no audio file (audio.wav / audio.flac / audio.ogg)"),
    ]
    assert len(out.frames) == 2 and out.labels[0] is not None and out.labels[1:] == [None] * 4


def test_frame_list_in_the_message_stops_at_twelve(tmp_path):
    clip = _clip(tmp_path, frames=[f"{t}.jpg" for t in range(14)], labels=range(5))
    (message,) = [m for kind, m in scan_clip(clip, "v1s", "val").problems if kind == "frame"]
    assert f"found 14 frames numbered {list(range(12))}, but" in message


def test_missing_frames_and_labels_folders(tmp_path):
    clip = _clip(tmp_path, label_dir=False)
    os.rmdir(os.path.join(clip, "frames"))
    out = scan_clip(clip, "v1m", "val")
    assert out.problems[0] == ("frame", f"{os.path.join(clip, 'frames')}: frames folder not found")
    labels = [m for kind, m in out.problems if kind == "label"]
    assert labels == [
        f"{os.path.join(clip, 'labels_rgb', f'{t}.png')}: label file not found" for t in range(5)
    ]


def test_repeated_uid_names_the_first_line(tmp_path):
    root = _metadata(tmp_path, "v,a,0,0,dog,train,v1s\nv,b,0,0,cat,val,v1s\nv,a,0,0,cat,val,v1s\n")
    rows, problems = read_metadata(root, CLASSES)
    assert [r.uid for r in rows] == ["a", "b"]
    assert [p.split("metadata.csv:", 1)[1] for p in problems] == [
        "4: uid 'a' of subset v1s repeats line 2"
    ]


# -- from test_dataset_format.py: Metadata uid checks: a uid must name one folder directly under
# ``<root>/<subset>/``.


@pytest.mark.parametrize(
    "uid, problem",
    [
        ("", "empty uid"),
        ("..", "uid '..' contains '..' (escapes the dataset root)"),
        (".", "uid '.' is not a single folder name"),
        ("a/../b", "uid 'a/../b' contains '..' (escapes the dataset root)"),
        ("a\\..", "uid 'a\\..' contains '..' (escapes the dataset root)"),
        ("/etc", "uid '/etc' is an absolute path (escapes the dataset root)"),
        ("\\share", "uid '\\share' is an absolute path (escapes the dataset root)"),
        ("a/b", "uid 'a/b' is not a single folder name"),
        ("a\\b", "uid 'a\\b' is not a single folder name"),
        ("clip_1", None),
        ("x..y", None),  # dots inside a name are fine
        ("...", None),
    ],
)
def test_uid_problem(uid, problem):
    assert _uid_problem(uid) == problem


def test_read_metadata_rejects_dot_uids_naming_the_line(tmp_path):
    classes = load_class_list("avss_synth.txt")
    name = classes.names[1]
    with open(tmp_path / "metadata.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["uid", "a_obj", "split", "label"])
        w.writeheader()
        w.writerow({"uid": "good", "a_obj": name, "split": "train", "label": "v1s"})
        w.writerow({"uid": "..", "a_obj": name, "split": "train", "label": "v1s"})
        w.writerow({"uid": ".", "a_obj": name, "split": "val", "label": "v2"})
    rows, problems = read_metadata(tmp_path, classes)
    assert [r.uid for r in rows] == ["good"] and rows[0].line == 2
    path = tmp_path / "metadata.csv"
    assert problems == [
        f"{path}:3: uid '..' contains '..' (escapes the dataset root)",
        f"{path}:4: uid '.' is not a single folder name",
    ]


# -- from test_avsbench_writer.py: The AVSBench-format writers: what they write is what the
# readers of the same module read.


SYNTH_CLASSES = load_class_list("avss_synth.txt")


def test_written_clip_reads_back(tmp_path):
    num_classes = len(SYNTH_CLASSES)
    clip_dir = make_clip_dirs(clip_folder(tmp_path, "v1m", "clip_0"))
    assert clip_dir == tmp_path / "v1m" / "clip_0"
    rng = np.random.default_rng(0)
    labels = rng.integers(0, num_classes, (5, 12, 16))
    for t in range(5):
        write_frame(clip_dir, t, rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), quality=80)
        write_label(clip_dir, t, labels[t], num_classes, paletted=t == 4)
    samples = 0.5 * np.sin(np.linspace(0, 100, 5 * 8000))
    write_audio(clip_dir, samples, 8000)

    files = scan_clip(str(clip_dir), "v1m", "val")
    assert files.problems == [] and len(files.frames) == 5 and files.audio.endswith("audio.wav")
    assert image_size(files.frames[0]) == (12, 16)
    for t in range(4):
        rgb = np.asarray(Image.open(files.labels[t]).convert("RGB"))
        assert np.array_equal(decode_label_rgb(rgb, num_classes), labels[t])
    with Image.open(files.labels[4]) as paletted:
        assert paletted.mode == "P" and np.array_equal(np.asarray(paletted), labels[4])
    audio, rate = sf.read(files.audio)
    info = sf.info(files.audio)
    assert rate == 8000 and info.subtype == "PCM_16" and np.abs(audio - samples).max() < 1e-4


def test_written_index_reads_back(tmp_path):
    names = SYNTH_CLASSES.names
    rows = [
        {"uid": "a", "a_obj": names[1], "split": "train", "label": "v1s"},
        {"uid": "b", "a_obj": f"{names[1]}_{names[2]}", "split": "test", "label": "v1m"},
    ]
    write_metadata(tmp_path, rows)
    write_label2idx(tmp_path, names)
    read, problems = read_metadata(tmp_path, SYNTH_CLASSES)
    assert problems == [] and [(r.uid, r.subset, r.class_names) for r in read] == [
        ("a", "v1s", (names[1],)),
        ("b", "v1m", (names[1], names[2])),
    ]
    assert check_label2idx(tmp_path, SYNTH_CLASSES) is None
    assert (tmp_path / "label2idx.json").read_text().endswith("}\n")
    other = tmp_path / "long"
    other.mkdir()
    write_metadata(other, [{"uid": "x", "n": 3}], columns=("uid", "n"))
    assert (other / "metadata.csv").read_bytes() == b"uid,n\r\nx,3\r\n"
