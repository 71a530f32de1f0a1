"""The default background photographs are split into train / val / test pools per scene, not per
file: the photos of one scene (a stereo pair, a numbered series, the same room in two folders)
never end up in two splits. Runs on a fake opencv-doc / scikit-image tree with the curated names,
and on the installed packages where they are there."""

from pathlib import Path

import pytest
from PIL import Image

import avss_synth.media as media_module
import avss_synth.pools as pools_module
from avss_synth.media import OPENCV_BACKGROUNDS, OPENCV_EXAMPLES_DIR, SKIMAGE_BACKGROUNDS
from avss_synth.pools import (
    EXTRA_OPENCV_BACKGROUNDS,
    EXTRA_SKIMAGE_BACKGROUNDS,
    assign_pools,
    background_group,
    index_media_v2,
    speech_group,
)
from ovavss_d2.data.class_lists import load_class_list

KEYS = list(load_class_list("avss_synth.txt").names[1:])
# The scenes with more than one curated photo, written out by hand (not derived from the code
# under test): every photo of a scene must land in the same pool.
SCENES = {
    "aero": ["data/aero1.jpg", "data/aero3.jpg"],
    "aloe": ["data/aloeL.jpg", "data/aloeR.jpg"],
    "graf": ["data/graf1.png", "data/graf3.png"],
    "leuven": ["data/leuvenA.jpg", "data/leuvenB.jpg"],
    "rubberwhale": ["data/rubberwhale1.png", "data/rubberwhale2.png"],
    "home": ["data/home.jpg", "reg/home.png"],
    "hfs": ["hfs/data/000.jpg", "hfs/data/001.jpg", "hfs/data/002.jpg"],
    "scenetext": [f"text/scenetext0{i}.jpg" for i in range(1, 7)],
}


def _fake_tree(root: Path):
    """Tiny images under the curated names of opencv-doc's examples and scikit-image's data."""
    opencv, skimage = root / "opencv-doc", root / "skimage"
    for rel in OPENCV_BACKGROUNDS + EXTRA_OPENCV_BACKGROUNDS:
        (opencv / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30), (len(rel) * 7 % 256, 90, 30)).save(opencv / rel)
    skimage.mkdir()
    for name in SKIMAGE_BACKGROUNDS + EXTRA_SKIMAGE_BACKGROUNDS:
        Image.new("RGB", (40, 30), (20, 200, len(name) * 5 % 256)).save(skimage / name)
    return opencv, skimage


@pytest.fixture(params=["fake", "installed"])
def background_pools(request, media_dirs, tmp_path, monkeypatch):
    """split -> the short names (relative to opencv-doc's examples / skimage's data) of its
    background pool, from ``index_media_v2`` with the default backgrounds."""
    if request.param == "fake":
        opencv, skimage = _fake_tree(tmp_path)
        for module in (media_module, pools_module):
            monkeypatch.setattr(module, "OPENCV_EXAMPLES_DIR", opencv)
            monkeypatch.setattr(module, "_skimage_data_dir", lambda: skimage)
        stamps = media_dirs[0]
    else:
        stamps_root = media_module.DEFAULT_STAMPS_DIR
        if not (OPENCV_EXAMPLES_DIR.is_dir() and stamps_root.is_dir()):
            pytest.skip("the Debian media packages are not installed")
        stamps = None
    media, pools = index_media_v2(KEYS, stamps, None)
    out = {}
    for split, paths in pools.backgrounds.items():
        out[split] = [media.name(p).split("/", 1)[1] for p in paths]
    return out


def test_default_backgrounds_are_pooled_per_scene(background_pools):
    owner = {}
    for split, names in background_pools.items():
        assert names, f"empty {split} pool"
        for name in names:
            assert name not in owner, f"{name} in two pools"
            owner[name] = split
    curated = OPENCV_BACKGROUNDS + EXTRA_OPENCV_BACKGROUNDS
    assert set(owner) == set(curated + SKIMAGE_BACKGROUNDS + EXTRA_SKIMAGE_BACKGROUNDS)
    for scene, photos in SCENES.items():
        splits = {owner[p] for p in photos}
        assert len(splits) == 1, f"scene {scene} is split across pools: " + ", ".join(
            f"{p} -> {owner[p]}" for p in photos
        )


def test_assign_pools_by_hand():
    pools = assign_pools(["a", "b", "c"])  # 3 groups: one per pool, whatever the hash order
    assert sorted(len(v) for v in pools.values()) == [1, 1, 1]
    grouped = assign_pools(["x1", "x2", "y", "z"], group=lambda s: s[0])
    owner = {i: s for s, items in grouped.items() for i in items}
    assert owner["x1"] == owner["x2"]
    assert background_group("opencv-doc/data/aloeL.jpg") == background_group("x/aloeR.png")
    assert background_group("d/rubberwhale1.png") == "rubberwhale"
    assert background_group("d/board.jpg") == "board"
    assert speech_group("a/dog_desc_fr.ogg") == speech_group("a/dog_desc_de.ogg") == "a/dog"
