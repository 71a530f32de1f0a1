"""read_label_map and encode_label_rgb at their edges: modes, sizes, dtypes, binary collapse."""

import numpy as np
import pytest
from PIL import Image

from ovavss_d2.data.class_lists import encode_label_rgb, palette
from ovavss_d2.data.labels import read_label_map


def _save(tmp_path, image: Image.Image, name: str = "lab.png") -> str:
    path = tmp_path / name
    image.save(path)
    return str(path)


def test_rgba_labels_are_decoded_by_colour(tmp_path):
    rgb = encode_label_rgb(np.array([[0, 1, 2]]), 3)
    rgba = np.concatenate([rgb, np.full((1, 3, 1), 128, dtype=np.uint8)], axis=2)
    path = _save(tmp_path, Image.fromarray(rgba, mode="RGBA"))
    assert read_label_map(path, 3).tolist() == [[0, 1, 2]]


def test_index_labels_are_int64_and_checked(tmp_path):
    image = Image.fromarray(np.array([[0, 2, 255]], dtype=np.uint8), mode="P")
    image.putpalette(palette(256).tobytes())
    label = read_label_map(_save(tmp_path, image), 3)
    assert label.dtype == np.int64 and label.tolist() == [[0, 2, 255]]
    image = Image.fromarray(np.array([[0, 3]], dtype=np.uint8), mode="P")
    image.putpalette(palette(256).tobytes())
    with pytest.raises(ValueError, match=r"1 pixels hold indices outside \[0, 3\) \(max 3\)"):
        read_label_map(_save(tmp_path, image, "bad.png"), 3)


def test_unsupported_mode_is_named(tmp_path):
    path = _save(tmp_path, Image.new("LA", (2, 2)))
    with pytest.raises(
        ValueError, match=r"lab\.png: unsupported label image mode LA \(expected RGB"
    ):
        read_label_map(path, 3)


def test_expected_size_compares_height_and_width(tmp_path):
    path = _save(tmp_path, Image.fromarray(np.zeros((2, 3), dtype=np.uint8), mode="L"))
    assert read_label_map(path, 3, expected_size=(2, 3)).shape == (2, 3)
    with pytest.raises(ValueError, match=r"label size 3x2 \(WxH\) differs from its frame's 2x2"):
        read_label_map(path, 3, expected_size=(2, 2))


def test_empty_label_encodes():
    assert encode_label_rgb(np.zeros((0, 4), dtype=np.int64), 3).shape == (0, 4, 3)
