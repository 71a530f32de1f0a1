"""Fixtures of the demo tests: a tiny random-initialised OVAVSS model and short generated media."""

from pathlib import Path
from typing import Optional

import numpy as np
import pytest
import soundfile as sf

from ovavss_d2.utils.video_io import AudioStream, VideoWriter

REPO = Path(__file__).resolve().parents[2]
INSTANT_CONFIG = REPO / "configs" / "avss_synth" / "ovavss_effnet_yamnet_minilm_instant_test.yaml"


def write_wav(path: Path, seconds: float, sample_rate: int = 22050, channels: int = 1) -> Path:
    """A tone with a little noise, ``channels`` channels, PCM 16."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    rng = np.random.default_rng(0)
    wave = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(t.shape)
    data = np.stack([wave * (c + 1) / channels for c in range(channels)], axis=1)
    sf.write(path, data.astype(np.float32), sample_rate, subtype="PCM_16")
    return path


def write_video(
    path: Path,
    seconds: float,
    fps: float = 10.0,
    size=(64, 48),
    audio_seconds: Optional[float] = None,
    sample_rate: int = 44100,
) -> Path:
    """An H.264 mp4 of moving coloured blocks (``size`` = W x H), with an AAC track if asked."""
    width, height = size
    audio = None
    if audio_seconds is not None:
        n = int(audio_seconds * sample_rate)
        tone = 0.2 * np.sin(2 * np.pi * 330 * np.arange(n) / sample_rate).astype(np.float32)
        audio = AudioStream(sample_rate, 2, iter([np.stack([tone, tone])]))
    with VideoWriter(path, fps, audio=audio) as writer:
        for i in range(int(round(seconds * fps))):
            frame = np.full((height, width, 3), 40, dtype=np.uint8)
            x = (3 * i) % max(1, width - 16)
            frame[height // 4 : height // 4 + 16, x : x + 16] = (220, 120, 30)
            writer.write(frame)
    return path


@pytest.fixture(scope="session")
def make_wav():
    return write_wav


@pytest.fixture(scope="session")
def make_video():
    return write_video


@pytest.fixture(scope="session")
def tiny_config_file(tmp_path_factory) -> Path:
    """The instant-test config at 64-pixel test size with single-template prompts, its random
    initialisation allowed at inference (MODEL.ALLOW_UNTRAINED)."""
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(
        f"_BASE_: {INSTANT_CONFIG}\n"
        "MODEL:\n  ALLOW_UNTRAINED: True\n"
        "  TEXT_ENCODER:\n    TEMPLATES: single\n  OVAVSS:\n    TEST:\n      TOP_K: 3\n"
        "INPUT:\n  MIN_SIZE_TEST: 64\n  MAX_SIZE_TEST: 96\n  SAMPLING_FRAME_NUM: 3\n"
    )
    return path


@pytest.fixture(scope="session")
def tiny_cfg(tiny_config_file):
    from detectron2.config import get_cfg

    from ovavss_d2 import add_ovavss_config

    cfg = get_cfg()
    add_ovavss_config(cfg)
    cfg.merge_from_file(str(tiny_config_file))
    cfg.MODEL.OVAVSS.TEST.SCORE_THRESHOLD = 0.0  # a random model: keep its top-k guesses
    return cfg


@pytest.fixture(scope="session")
def predictor(tiny_cfg):
    from ovavss_d2.predictor import VideoPredictor

    return VideoPredictor(tiny_cfg, vocabulary=["dog", "violin", "fire truck"])


@pytest.fixture(scope="module")
def demo(load_script, request):
    """demo/demo.py imported by its path, a fresh module for each test module."""
    return load_script("demo/demo.py", f"ovavss_demo_{request.module.__name__.rsplit('.', 1)[-1]}")
