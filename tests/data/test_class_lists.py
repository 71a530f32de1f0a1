"""Class-list files and RGB label decoding: the error messages name the file, line and colours."""

import json
import re

import numpy as np
import pytest

from ovavss_d2.data.class_lists import ClassList, decode_label_rgb, load_class_list, load_split


def _write(tmp_path, text: str):
    path = tmp_path / "classes.txt"
    path.write_text(text)
    return path


def test_colour_above_every_palette_colour_is_reported():
    """White sorts after every key of a 3-class palette: a clear error, not an IndexError."""
    rgb = np.zeros((1, 2, 3), dtype=np.uint8)
    rgb[0, 1] = 255
    with pytest.raises(ValueError, match=r"1 pixels have colours outside the 3-class palette"):
        decode_label_rgb(rgb, 3, source="lab.png")


def test_at_most_five_unknown_colours_are_shown():
    rgb = np.zeros((1, 7, 3), dtype=np.uint8)
    rgb[0, 1:, 0] = np.arange(1, 7)  # (1,0,0) ... (6,0,0): none is in the palette
    with pytest.raises(ValueError) as err:
        decode_label_rgb(rgb, 3, source="lab.png")
    message = str(err.value)
    assert message.startswith("lab.png: 6 pixels have colours outside the 3-class palette")
    assert message.endswith("e.g. (1,0,0), (2,0,0), (3,0,0), (4,0,0), (5,0,0)")


def test_bad_line_names_file_and_line_number(tmp_path):
    path = _write(tmp_path, "0:background\n# a comment\nx:dog\n")
    expected = f"{path}:3: expected '<index>:<name>[,<synonym>...]', got 'x:dog'"
    with pytest.raises(ValueError, match=re.escape(expected)):
        load_class_list(path)


@pytest.mark.parametrize("line", ["1 dog", "1:", "1: , "])
def test_lines_without_colon_or_name_are_rejected(tmp_path, line):
    path = _write(tmp_path, f"0:background\n{line}\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}:2: expected '<index>:")):
        load_class_list(path)


def test_out_of_order_index_names_its_line(tmp_path):
    path = _write(tmp_path, "0:background\n2:dog\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}:2: index 2 out of order (expected 1)")):
        load_class_list(path)


def test_colon_inside_a_synonym_belongs_to_the_name_part(tmp_path):
    """Only the first colon separates the index: ``1:clock,clock at 7:30`` is one prompt."""
    classes = load_class_list(_write(tmp_path, "0:background\n1:clock,clock at 7:30\n"))
    assert classes.names == ("background", "clock")
    assert classes.prompt_names[1] == ("clock at 7:30",)


def test_missing_file_names_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"class data file '.*nope\.txt' not found"):
        load_class_list(tmp_path / "nope.txt")


def test_unknown_class_key_names_the_list():
    classes = ClassList(("background", "dog"), (("background",), ("dog",)), source="mine.txt")
    with pytest.raises(KeyError, match="class 'cat' is not in the class list mine.txt"):
        classes.index("cat")


def test_index_of_a_known_key():
    classes = ClassList(("background", "dog", "cat"), (("background",), ("dog",), ("cat",)))
    assert classes.index("cat") == 2 and classes.index("background") == 0


def test_duplicate_class_names_its_line(tmp_path):
    path = _write(tmp_path, "0:background\n1:dog,hound\n2:dog\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}:3: duplicate class 'dog'")):
        load_class_list(path)


def test_key_without_synonyms_is_its_own_prompt_with_spaces(tmp_path):
    classes = load_class_list(_write(tmp_path, "0:background\n1:fire-truck\n2:cat,kitty\n"))
    assert classes.prompt_names == (("background",), ("fire truck",), ("kitty",))


def _split(tmp_path, data) -> str:
    path = tmp_path / "split.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


CLASSES4 = ClassList(
    ("background", "dog", "cat", "cow", "eel"), tuple((n,) for n in "abcde"), source="four.txt"
)


def test_split_gives_sorted_label_indices(tmp_path):
    split = load_split(_split(tmp_path, {"base": ["eel", "dog"], "novel": ["cat"]}), CLASSES4)
    assert split == {"base": [1, 4], "novel": [2], "pool": []}
    pool = {"base": ["eel", "dog", "cow"], "novel": ["cat"], "pool": ["cow", "eel"]}
    assert load_split(_split(tmp_path, pool), CLASSES4)["pool"] == [3, 4]


@pytest.mark.parametrize(
    "data, message",
    [
        ("{not json", r": not valid JSON \("),
        ({"base": ["dog"]}, r": missing list 'novel'"),
        ({"base": "dog", "novel": []}, r": missing list 'base'"),
        ({"base": ["dog", "owl"], "novel": []}, r": base classes not in four\.txt: \['owl'\]"),
        ({"base": ["dog"], "novel": ["background"]}, r": novel classes not in four\.txt"),
        ({"base": ["dog", "cat"], "novel": ["cat"]}, r": classes both base and novel: \['cat'\]"),
        ({"base": ["dog"], "novel": [], "pool": "cow"}, r": missing list 'pool'"),
        ({"base": ["dog"], "novel": [], "pool": ["owl"]}, r": pool classes not in four\.txt"),
        (
            {"base": ["dog"], "novel": ["cat"], "pool": ["cat", "dog"]},
            r": pool classes must also be base: \['cat'\]",
        ),
    ],
)
def test_split_errors_name_the_file(tmp_path, data, message):
    path = _split(tmp_path, data)
    with pytest.raises(ValueError, match="^" + re.escape(path) + message):
        load_split(path, CLASSES4)


def test_class_list_needs_two_classes_and_records_its_source(tmp_path):
    path = _write(tmp_path, "0:background\n1:dog\n")
    assert load_class_list(path).source == str(path)
    path = _write(tmp_path, "0:background\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}: a class list needs background and")):
        load_class_list(path)
