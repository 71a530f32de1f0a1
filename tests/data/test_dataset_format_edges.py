"""AVSBench format checks at their edges: EXIF orientation, the v1s annotation rule, short CSV
rows, and the exact problem kinds and messages of metadata.csv, label2idx.json and clip folders."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from ovavss_d2.data.class_lists import ClassList
from ovavss_d2.data.datasets.avsbench_format import (
    DatasetFormatError,
    annotated_by_design,
    check_label2idx,
    image_size,
    read_metadata,
    scan_clip,
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
