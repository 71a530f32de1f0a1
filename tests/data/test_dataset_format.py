"""Metadata uid checks: a uid must name one folder directly under ``<root>/<subset>/``."""

import csv

import pytest

from ovavss_d2.data.class_lists import load_class_list
from ovavss_d2.data.datasets.avsbench_format import _uid_problem, read_metadata


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
