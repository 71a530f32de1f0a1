"""Label decoding at the edge of the class list: with K+1 = 5 entries, index K = 4 is the last
class and index K+1 = 5 is an error, in index PNGs and palette RGB PNGs alike."""

import numpy as np
import pytest
from PIL import Image

from ovavss_d2.data.class_lists import decode_label_rgb, encode_label_rgb, palette
from ovavss_d2.data.labels import read_label_map

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
