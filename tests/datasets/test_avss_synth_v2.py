"""AVSS-Synth v2: SNR of the written audio, held-out pools, robustness variants, noise helpers,
registration of the variants. Tiny builds on the fake media tree of conftest.py."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avss_synth import build_avss_synth, index_media_v2, variant_root
from avss_synth.clips_v2 import smooth_edges
from avss_synth.noise import colored_noise, mix_at_snr, scale_to_snr, snr_db
from avss_synth.pools import speech_group
from avss_synth.variants import parse_variants
from ovavss_d2.data.class_lists import load_class_list

REPO = Path(__file__).resolve().parents[2]
SIZE = (64, 48)
SR = 16000
COUNTS = {"train": 6, "val": 3, "test": 5}
VARIANTS = {"clean": None, "snr20": 20.0, "snr5": 5.0}


@pytest.fixture(scope="module")
def v2(tmp_path_factory, media_dirs) -> Path:
    root = tmp_path_factory.mktemp("v2") / "AVSS-Synth"
    build_avss_synth(
        root,
        clips=COUNTS,
        size=SIZE,
        sample_rate=SR,
        stamps_dir=media_dirs[0],
        backgrounds_dir=media_dirs[1],
        variants=VARIANTS,
        write_stems=True,
    )
    return root


def _conditions(root: Path) -> dict:
    return json.loads((root / "conditions.json").read_text())


def _read(path: Path) -> np.ndarray:
    return sf.read(path, dtype="float64")[0]


def test_snr_of_written_audio_is_the_drawn_one(v2):
    """audio.wav = sources + noise (stems), and the SNR measured from the written files is within
    1 dB of the value drawn for the clip (the 16-bit audio adds quantisation noise only)."""
    conditions = _conditions(v2)
    assert len(conditions) == sum(COUNTS.values())
    drawn = []
    for uid, cond in conditions.items():
        audio = _read(v2 / cond["subset"] / uid / "audio.wav")
        sources = _read(v2 / "stems" / uid / "sources.wav")
        noise = _read(v2 / "stems" / uid / "noise.wav")
        assert np.abs(audio - (sources + noise)).max() < 1e-4  # PCM-16 rounding
        assert abs(snr_db(sources, noise) - cond["snr_db"]) < 0.01
        assert abs(snr_db(sources, audio - sources) - cond["snr_db"]) < 1.0
        assert 0.0 <= cond["snr_db"] <= 30.0 and cond["noise_kinds"]
        drawn.append(cond["snr_db"])
    assert np.ptp(drawn) > 1.0  # drawn per clip, not one value


def test_conditions_are_recorded(v2):
    kinds, backgrounds = set(), set()
    for cond in _conditions(v2).values():
        kinds |= set(cond["noise_kinds"])
        backgrounds.add(cond["visual"]["background_kind"])
        vis = cond["visual"]
        assert len(vis["crops"]) == 5 and 35 <= vis["jpeg_quality"] <= 95
        for obj in cond["objects"]:
            assert 0 < obj["area"] < 1
        for comp in cond["noise"]:
            if comp["kind"] == "offscreen":
                assert 0 <= comp["start_s"] < comp["end_s"] <= 5
    assert kinds & {"white", "pink", "brown"} and kinds & {"babble", "offscreen"}
    assert "photo" in backgrounds


def test_train_and_test_pools_are_disjoint(v2, media_dirs):
    keys = list(load_class_list("avss_synth.txt").names[1:])
    media, pools = index_media_v2(keys, *media_dirs)
    for a, b in [("train", "val"), ("train", "test"), ("val", "test")]:
        assert not set(pools.backgrounds[a]) & set(pools.backgrounds[b])
        assert not set(pools.offscreen[a]) & set(pools.offscreen[b])
        groups = {s: {speech_group(media.name(p)) for p in pools.speech[s]} for s in (a, b)}
        assert not groups[a] & groups[b]  # no description in another language either
    # ... and what the clips actually used follows the pools
    used = {s: set() for s in ("train", "val", "test")}
    for cond in _conditions(v2).values():
        assert cond["pool"] == cond["split"]
        used[cond["split"]] |= {f for c in cond["noise"] for f in c["files"]}
        if cond["visual"]["background"]:
            used[cond["split"]].add(cond["visual"]["background"])
    assert used["train"] and not used["train"] & (used["val"] | used["test"])
    pools_file = json.loads((v2 / "noise_pools.json").read_text())
    assert not set(pools_file["train"]) & set(pools_file["test"])


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_variants_share_frames_and_labels(v2):
    test_rows = [r for r in (v2 / "metadata.csv").read_text().splitlines()[1:] if ",test," in r]
    assert len(test_rows) == COUNTS["test"]
    conditions = _conditions(v2)
    for name, snr in VARIANTS.items():
        vroot = variant_root(v2, name)
        assert (vroot / "metadata.csv").read_text().splitlines()[1:] == test_rows
        vcond = json.loads((vroot / "conditions.json").read_text())
        for row in test_rows:
            uid, _, _, subset = row.split(",")
            main, var = v2 / subset / uid, vroot / subset / uid
            for sub in ("frames", "labels_rgb"):
                names = sorted(p.name for p in (main / sub).iterdir())
                assert names == sorted(p.name for p in (var / sub).iterdir()) and names
                assert all(_sha(main / sub / n) == _sha(var / sub / n) for n in names)
            audio = _read(var / "audio.wav")
            sources = _read(v2 / "stems" / uid / "sources.wav")
            assert _sha(var / "audio.wav") != _sha(main / "audio.wav")
            # the variant's sources are the clip's sources up to the peak limiter's gain
            k = float(audio @ sources / (sources @ sources))
            residual = audio - k * sources
            if snr is None:
                assert np.abs(residual).max() < 1e-4  # nothing but the sources
            else:
                assert abs(snr_db(k * sources, residual) - snr) < 1.0
            assert vcond[uid]["snr_db"] == snr
            assert vcond[uid]["drawn_snr_db"] == conditions[uid]["snr_db"]


def test_variants_load_and_validate_like_avsbench(v2):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from ovavss_d2.data.datasets.avsbench import register_avsbench_dataset
    from ovavss_d2.data.validate import validate_dataset

    assert validate_dataset(v2, class_list="avss_synth.txt").ok
    for name in VARIANTS:
        vroot = variant_root(v2, name)
        report = validate_dataset(vroot, class_list="avss_synth.txt")
        assert report.ok and report.num_clips == COUNTS["test"], report.problems
        ds = f"_test_v2_variant_{name}"
        register_avsbench_dataset(
            ds,
            vroot,
            splits=("test",),
            class_list="avss_synth.txt",
            split_file="avss_synth_split.json",
        )
        try:
            dicts = DatasetCatalog.get(ds)
            assert len(dicts) == COUNTS["test"] and all(len(d["file_names"]) == 5 for d in dicts)
        finally:
            DatasetCatalog.remove(ds)
            MetadataCatalog.remove(ds)


def test_predefined_registrations_read_v2(v2):
    """The predefined names (import-time registration) load the v2 build and its variants."""
    code = (
        "from detectron2.data import DatasetCatalog, MetadataCatalog\n"
        "import ovavss_d2.data.datasets\n"
        "for n in ['avss_synth_train', 'avss_synth_test', 'avs_synth_test', "
        "'avss_synth_test_clean', 'avss_synth_test_snr20', 'avs_synth_test_snr5']:\n"
        "    m = MetadataCatalog.get(n)\n"
        "    print(n, len(DatasetCatalog.get(n)), len(m.stuff_classes), m.evaluator_type)\n"
        "print(MetadataCatalog.get('avss_synth_test_snr10').novel_ids == "
        "MetadataCatalog.get('avss_synth_test').novel_ids)\n"
    )
    env = dict(os.environ, DETECTRON2_DATASETS=str(v2.parent), PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    assert lines[0] == "avss_synth_train 6 23 avss"
    assert lines[1] == "avss_synth_test 5 23 avss"
    assert lines[2].startswith("avs_synth_test 5 ") and lines[2].endswith("avs_binary")
    assert lines[3] == "avss_synth_test_clean 5 23 avss"
    assert lines[4] == "avss_synth_test_snr20 5 23 avss"
    assert lines[5].startswith("avs_synth_test_snr5 5 ")
    assert lines[6] == "True"


def test_noise_helpers():
    n = 1 << 15
    white, pink, brown = (colored_noise(k, n, 3) for k in ("white", "pink", "brown"))
    for x in (white, pink, brown):
        assert abs(np.sqrt(np.mean(x**2)) - 1) < 1e-9 and abs(x.mean()) < 1e-9

    def octave_ratio_db(x):  # power in [1k, 2k) bins over power in [2k, 4k) bins
        p = np.abs(np.fft.rfft(x)) ** 2
        return 10 * np.log10(p[1000:2000].sum() / p[2000:4000].sum())

    # white: twice the bins, twice the power (-3 dB); pink: equal power per octave (0 dB);
    # brown: 1/f^2, half the power in the upper octave (+3 dB)
    assert abs(octave_ratio_db(white) + 3.01) < 0.5
    assert abs(octave_ratio_db(pink)) < 0.5
    assert abs(octave_ratio_db(brown) - 3.01) < 0.5
    signal = np.sin(np.arange(1000) / 5.0)
    scaled = scale_to_snr(signal, white[:1000], 12.5)
    assert abs(snr_db(signal, scaled) - 12.5) < 1e-9
    mix, sig, noi = mix_at_snr(4 * signal, white[:1000], 0.0, peak=0.89)
    assert np.abs(mix).max() <= 0.89 + 1e-12 and np.allclose(mix, sig + noi)
    assert abs(snr_db(sig, noi)) < 1e-9  # the limiter keeps the SNR
    env = np.array([0, 0, 1, 1, 1, 1, 0], dtype=float)
    assert np.allclose(smooth_edges(env, 2), [0, 0, 0.5, 1, 1, 0.5, 0])
    assert parse_variants("clean, 20,snr7.5") == {"clean": None, "snr20": 20.0, "snr7.5": 7.5}
    with pytest.raises(ValueError, match="neither"):
        parse_variants("loud")


def test_missing_noise_media_is_explained(media_dirs, tmp_path):
    import shutil

    from avss_synth import MediaError

    stamps = tmp_path / "stamps"
    shutil.copytree(media_dirs[0], stamps, ignore=shutil.ignore_patterns("*_desc*"))
    keys = list(load_class_list("avss_synth.txt").names[1:])
    with pytest.raises(MediaError, match=r"spoken descriptions \(\*_desc\*.ogg: 0\).*setup.sh"):
        index_media_v2(keys, stamps, media_dirs[1])
    with pytest.raises(MediaError, match="at least 3 distinct background images"):
        few = tmp_path / "few"
        few.mkdir()
        for name in ("a.jpg", "b.jpg"):
            shutil.copyfile(next(media_dirs[1].glob("*.jpg")), few / name)
        index_media_v2(keys, media_dirs[0], few)
