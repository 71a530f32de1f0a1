"""A tiny media tree laid out like Tux Paint's stamps, and a backgrounds folder (no package)."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from avss_synth.media import SOUND_CLASSES, STAMP_CLASSES
from avss_synth.pools import OFFSCREEN_SOUNDS

NUM_SPEECH_GROUPS = 6  # spoken descriptions: 6 stamps x 2 languages
NUM_BACKGROUNDS = 7


def _fake_stamp(path: Path, seed: int) -> None:
    """A small RGBA cut-out: a coloured ellipse whose alpha channel is the mask."""
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(24, 40)), int(rng.integers(24, 40))
    yy, xx = np.mgrid[:h, :w]
    inside = ((yy - h / 2) / (h / 2)) ** 2 + ((xx - w / 2) / (w / 2)) ** 2 <= 1
    rgba = np.zeros((h + 6, w + 6, 4), dtype=np.uint8)  # transparent margin, cropped by the loader
    rgba[3:-3, 3:-3, :3] = rng.integers(0, 256, 3)
    rgba[3:-3, 3:-3, 3] = np.where(inside, 255, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgba, "RGBA").save(path)


@pytest.fixture(scope="session")
def media_dirs(tmp_path_factory):
    """A stamps folder (ogg-named wav / wav sounds, spoken descriptions, off-screen recordings)
    and a folder of background images."""
    root = tmp_path_factory.mktemp("media")
    stamps = root / "stamps"
    for i, rel in enumerate(sorted(STAMP_CLASSES)):
        _fake_stamp(stamps / rel, i)
    for i, rel in enumerate(sorted(SOUND_CLASSES)):
        t = np.arange(int(0.4 * 22050)) / 22050
        wave = 0.5 * np.sin(2 * np.pi * (200 + 40 * i) * t)
        path = stamps / rel
        if i % 2:  # a same-named .wav stands in for the .ogg
            path = path.with_suffix(".wav")
        sf.write(path, wave.astype(np.float32), 22050)
    rng = np.random.default_rng(1)
    # a spoken description next to a stamp must never be an object's sound
    sf.write(stamps / "animals/mammals/dogs/dog_desc.wav", 0.3 * rng.standard_normal(3000), 22050)
    for g in range(NUM_SPEECH_GROUPS):
        for lang in ("fr", "de"):
            path = stamps / f"things/thing{g}_desc_{lang}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            t = np.arange(int(0.5 * 16000)) / 16000
            wave = 0.4 * np.sin(2 * np.pi * (300 + 50 * g) * t) * (1 + np.sin(2 * np.pi * 4 * t))
            sf.write(path, wave.astype(np.float32), 16000)
    for rel in OFFSCREEN_SOUNDS[:8]:
        path = (stamps / rel).with_suffix(".wav")
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, (0.3 * rng.standard_normal(8000)).astype(np.float32), 16000)
    backgrounds = root / "backgrounds"
    backgrounds.mkdir()
    for i in range(NUM_BACKGROUNDS):
        shape = (60 + 5 * i, 90 - 3 * i, 3) if i % 2 == 0 else (80, 70)
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        Image.fromarray(image).save(backgrounds / (f"bg{i}.jpg" if i % 2 == 0 else f"bg{i}.png"))
    return stamps, backgrounds
