"""ovavss_d2.data.labels (read_label_map) with class_lists' palette: the round trip for every
class colour, paletted PNGs, unknown colours, modes, sizes, dtypes, binary collapse, and the
class-list boundary (with K+1 = 5 entries, index K = 4 is the last class, K+1 = 5 an error)."""

import numpy as np
import pytest
from PIL import Image

from ovavss_d2.data.class_lists import decode_label_rgb, encode_label_rgb, load_class_list, palette
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


# -- from test_label_boundaries.py: Label decoding at the edge of the class list: with K+1 = 5
# entries, index K = 4 is the last class and index K+1 = 5 is an error, in index PNGs and palette
# RGB PNGs alike.


NUM = 5  # K+1: background and 4 classes


def _index_png(path, values):
    Image.fromarray(np.asarray(values, dtype=np.uint8), mode="L").save(path)
    return path


def test_index_png_last_class_and_ignore_accepted(tmp_path):
    path = _index_png(tmp_path / "ok.png", [[0, 4], [255, 1]])
    np.testing.assert_array_equal(read_label_map(path, NUM), [[0, 4], [255, 1]])
    np.testing.assert_array_equal(read_label_map(path, NUM, binary=True), [[0, 1], [255, 1]])


def test_index_png_k_plus_one_rejected(tmp_path):
    path = _index_png(tmp_path / "k1.png", [[0, 5], [1, 5]])
    with pytest.raises(
        ValueError, match=r"k1\.png: 2 pixels hold indices outside \[0, 5\) \(max 5\)"
    ):
        read_label_map(path, NUM)


def test_index_png_custom_ignore_value(tmp_path):
    path = _index_png(tmp_path / "ign.png", [[0, 9]])
    np.testing.assert_array_equal(read_label_map(path, NUM, ignore_label=9), [[0, 9]])
    with pytest.raises(ValueError, match="not the ignore value 255"):
        read_label_map(path, NUM)


def test_rgb_last_class_accepted_and_k_plus_one_rejected(tmp_path):
    ok = encode_label_rgb(np.array([[0, 4], [3, 2]]), NUM)
    Image.fromarray(ok).save(tmp_path / "ok.png")
    np.testing.assert_array_equal(read_label_map(tmp_path / "ok.png", NUM), [[0, 4], [3, 2]])
    bad = ok.copy()
    bad[0, 0] = palette(NUM + 1)[NUM]  # the colour of index K+1
    with pytest.raises(ValueError, match="1 pixels have colours outside the 5-class palette"):
        decode_label_rgb(bad, NUM)
    with pytest.raises(ValueError, match="label values must lie in"):
        encode_label_rgb(np.array([[NUM]]), NUM)
    with pytest.raises(ValueError, match="label values must lie in"):
        encode_label_rgb(np.array([[-1]]), NUM)


def test_decode_is_exact_inverse_of_encode_for_every_class():
    labels = np.arange(71).reshape(1, 71).repeat(2, axis=0)
    rgb = encode_label_rgb(labels, 71)
    np.testing.assert_array_equal(decode_label_rgb(rgb, 71), labels)
    # palette colours of the first indices (PASCAL VOC): black, dark red, dark green, olive
    assert palette(4).tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    with pytest.raises(ValueError, match=r"<array>: expected an RGB label image"):
        decode_label_rgb(labels, 71)


# -- from test_label_map_edges.py: read_label_map and encode_label_rgb at their edges: modes,
# sizes, dtypes, binary collapse.


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
