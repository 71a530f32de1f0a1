"""Label PNGs: the palette round trip for every class colour, paletted PNGs, unknown colours."""

import numpy as np
import pytest
from PIL import Image

from ovavss_d2.data.class_lists import encode_label_rgb, load_class_list, palette
from ovavss_d2.data.labels import read_label_map


@pytest.fixture(scope="module")
def classes():
    return load_class_list("avsbench_semantic.txt")


def test_palette_reference_colours(classes):
    colors = palette(len(classes))
    assert len(classes) == 71 and len(set(map(tuple, colors))) == 71
    assert tuple(colors[0]) == (0, 0, 0)
    assert tuple(colors[1]) == (128, 0, 0)  # accordion
    assert tuple(colors[2]) == (0, 128, 0)  # airplane
    assert tuple(colors[70]) == (32, 128, 128)  # woman
    assert classes.names[70] == "woman"


def test_round_trip_all_71_colours(tmp_path, classes):
    label = np.arange(71 * 4, dtype=np.int64).reshape(4, 71) % 71  # every index, 4 rows
    path = tmp_path / "all.png"
    Image.fromarray(encode_label_rgb(label, 71)).save(path)
    decoded = read_label_map(path, 71)
    assert decoded.dtype == np.int64
    np.testing.assert_array_equal(decoded, label)


def test_paletted_png_uses_indices(tmp_path):
    label = np.arange(71, dtype=np.uint8).reshape(1, 71).repeat(3, axis=0)
    label[0, 0] = 255  # ignore value is kept
    img = Image.frombytes("P", (71, 3), label.tobytes())
    img.putpalette(palette(256).reshape(-1).tolist())
    img.save(tmp_path / "p.png")
    decoded = read_label_map(tmp_path / "p.png", 71)
    np.testing.assert_array_equal(decoded, label.astype(np.int64))


def test_binary_collapse_keeps_ignore(tmp_path):
    label = np.array([[0, 3, 70, 255]], dtype=np.uint8)
    Image.fromarray(label, mode="L").save(tmp_path / "l.png")
    np.testing.assert_array_equal(
        read_label_map(tmp_path / "l.png", 71, binary=True), [[0, 1, 1, 255]]
    )


def test_unknown_colour_names_file(tmp_path):
    rgb = encode_label_rgb(np.ones((4, 4), dtype=np.int64), 71)
    rgb[0, 0] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "bad.png")
    with pytest.raises(
        ValueError, match=r"bad\.png.*1 pixels have colours outside the 71-class palette.*\(1,2,3\)"
    ):
        read_label_map(tmp_path / "bad.png", 71)


def test_colour_of_index_beyond_class_list(tmp_path):
    Image.fromarray(encode_label_rgb(np.full((2, 2), 80), 81)).save(tmp_path / "c80.png")
    with pytest.raises(ValueError, match="outside the 71-class palette"):
        read_label_map(tmp_path / "c80.png", 71)
    index = np.full((2, 2), 80, dtype=np.uint8)
    Image.fromarray(index, mode="L").save(tmp_path / "i80.png")
    with pytest.raises(ValueError, match=r"i80\.png.*indices outside \[0, 71\)"):
        read_label_map(tmp_path / "i80.png", 71)


def test_size_mismatch_and_corrupt(tmp_path):
    Image.fromarray(encode_label_rgb(np.zeros((4, 6), dtype=np.int64), 71)).save(tmp_path / "s.png")
    with pytest.raises(
        ValueError, match=r"s\.png: label size 6x4 \(WxH\) differs from its frame's 8x4"
    ):
        read_label_map(tmp_path / "s.png", 71, expected_size=(4, 8))
    (tmp_path / "corrupt.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"corrupt\.png: cannot read label image"):
        read_label_map(tmp_path / "corrupt.png", 71)
    with pytest.raises(FileNotFoundError, match=r"label file not found: .*missing\.png"):
        read_label_map(tmp_path / "missing.png", 71)
