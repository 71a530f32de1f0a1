"""Recording conditions of an AVSS-Synth v2 clip: what is drawn, and the drawing.

Audio: a noise floor at an SNR drawn from ``snr_range`` made of one to several components
(stationary white / pink / brown noise, off-screen talkers, off-screen sounds that start and stop
within the clip). Visual: a real or a procedural background, a slow camera pan / zoom, colour,
blur and JPEG quality. Everything is drawn from the clip's own generator and recorded.
"""

from dataclasses import dataclass, field
from typing import List, Sequence, Tuple

import numpy as np

from .backgrounds import PROCEDURAL_KINDS, procedural_size
from .noise import STATIONARY_KINDS

SNR_RANGE = (0.0, 30.0)  # dB, drawn uniformly per clip
P_STATIONARY = 0.6  # chance of a stationary noise component
P_BABBLE = 0.5  # chance of off-screen talkers (2-5 of them)
P_OFFSCREEN = 0.5  # chance of off-screen sounds (1-2 of them)
TALKERS = (2, 6)  # [low, high) talkers in a babble
UTTERANCES_PER_TALKER = 4

P_PROCEDURAL = 0.3  # share of procedural backgrounds (the others are photographs)
P_PAN, PAN_SPEED = 0.5, 0.03  # camera pan: up to 3% of the crop width per frame
P_ZOOM, ZOOM_RATE = 0.5, 0.03  # camera zoom: crop size x (1 +- 3%) per frame
CROP_AREA = (0.3, 0.8)  # first crop's area as a share of the largest crop of the frame's aspect
BRIGHTNESS = (0.75, 1.25)
CONTRAST = (0.75, 1.25)
SATURATION = (0.6, 1.4)
CHANNEL_GAIN = (0.92, 1.08)  # white balance
P_BLUR, BLUR_SIGMA = 0.35, (0.5, 1.6)  # Gaussian blur (pixels) of the whole frame
JPEG_QUALITY = (35, 95)  # [low, high] of the frames' JPEG quality


@dataclass
class NoiseComponent:
    """One part of the noise floor; its track has unit RMS before ``gain_db``."""

    kind: str  # "white", "pink", "brown", "babble" (one talker) or "offscreen"
    gain_db: float = 0.0  # relative to the other components, before SNR scaling
    seed: int = 0  # stationary noise
    files: List[str] = field(default_factory=list)  # a talker's utterances / an off-screen sound
    offset_s: float = 0.0  # start position within the (looped) recording
    gap_s: float = 0.0  # pause between a talker's utterances
    start_s: float = 0.0  # off-screen sound: when it starts and stops within the clip
    end_s: float = 0.0


@dataclass
class AudioConditions:
    """The noise floor of a clip: its components and the SNR of the sources over it."""

    snr_db: float
    components: List[NoiseComponent] = field(default_factory=list)

    def kinds(self) -> List[str]:
        """The noise kinds of the clip, sorted."""
        return sorted({c.kind for c in self.components})


@dataclass
class VisualConditions:
    """Background, camera and image quality of a clip."""

    background_kind: str  # "photo" or one of PROCEDURAL_KINDS
    background: str  # photograph path ("" for a procedural background)
    bg_seed: int  # procedural background
    bg_flip: bool
    crops: List[Tuple[float, float, float, float]]  # (T,) (x0, y0, w, h) in background pixels
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    channel_gains: Tuple[float, float, float] = (1.0, 1.0, 1.0)
    blur_sigma: float = 0.0
    jpeg_quality: int = 90


def _round(x: float, digits: int = 3) -> float:
    return round(float(x), digits)


def _pick_files(rng: np.random.Generator, pool: Sequence[str], count: int) -> List[str]:
    return [pool[int(i)] for i in rng.integers(0, len(pool), size=count)]


def sample_audio_conditions(
    rng: np.random.Generator,
    speech: Sequence[str],
    offscreen: Sequence[str],
    duration_s: float,
    snr_range: Tuple[float, float] = SNR_RANGE,
) -> AudioConditions:
    """Draw a clip's noise floor from its split's speech and off-screen pools."""
    comps: List[NoiseComponent] = []
    while not comps:
        if rng.random() < P_STATIONARY:
            kind = STATIONARY_KINDS[int(rng.integers(len(STATIONARY_KINDS)))]
            comps.append(
                NoiseComponent(kind, _round(rng.uniform(-6, 0), 2), int(rng.integers(2**31)))
            )
        if rng.random() < P_BABBLE and speech:
            group_db = rng.uniform(-6, 0)
            for _ in range(int(rng.integers(*TALKERS))):
                comps.append(
                    NoiseComponent(
                        "babble",
                        _round(group_db + rng.uniform(-4, 0), 2),
                        files=_pick_files(rng, speech, UTTERANCES_PER_TALKER),
                        offset_s=_round(rng.uniform(0, 3)),
                        gap_s=_round(rng.uniform(0.05, 0.4)),
                    )
                )
        if rng.random() < P_OFFSCREEN and offscreen:
            for _ in range(int(rng.integers(1, 3))):
                start = rng.uniform(0, duration_s - 1)
                end = min(duration_s, start + rng.uniform(1, duration_s))
                comps.append(
                    NoiseComponent(
                        "offscreen",
                        _round(rng.uniform(-6, 0), 2),
                        files=_pick_files(rng, offscreen, 1),
                        offset_s=_round(rng.uniform(0, 1)),
                        start_s=_round(start),
                        end_s=_round(end),
                    )
                )
    return AudioConditions(_round(rng.uniform(*snr_range), 2), comps)


def camera_crops(
    rng: np.random.Generator, bg_hw: Tuple[int, int], size: Tuple[int, int], num_frames: int
) -> List[Tuple[float, float, float, float]]:
    """Per-frame crops of a background image: a random first crop, then a slow pan and zoom."""
    bg_h, bg_w = bg_hw
    width, height = size
    aspect = width / height
    full_w = min(bg_w, bg_h * aspect)
    w0 = full_w * np.sqrt(rng.uniform(*CROP_AREA))
    zoom = 1 + rng.uniform(-ZOOM_RATE, ZOOM_RATE) if rng.random() < P_ZOOM else 1.0
    pan = rng.uniform(-PAN_SPEED, PAN_SPEED, 2) * w0 if rng.random() < P_PAN else np.zeros(2)
    # keep every crop inside the image: the largest one decides the room for the centre
    w_max = min(full_w, w0 * max(1.0, zoom ** (num_frames - 1)))
    c0 = np.array(
        [
            rng.uniform(w_max / 2, bg_w - w_max / 2),
            rng.uniform(w_max / aspect / 2, bg_h - w_max / aspect / 2),
        ]
    )
    crops = []
    for t in range(num_frames):
        w = min(full_w, w0 * zoom**t)
        h = w / aspect
        cx = float(np.clip(c0[0] + pan[0] * t, w / 2, bg_w - w / 2))
        cy = float(np.clip(c0[1] + pan[1] * t, h / 2, bg_h - h / 2))
        crops.append((_round(cx - w / 2, 2), _round(cy - h / 2, 2), _round(w, 2), _round(h, 2)))
    return crops


def sample_visual_conditions(
    rng: np.random.Generator,
    photos: Sequence[str],
    photo_hw,
    size: Tuple[int, int],
    num_frames: int,
) -> VisualConditions:
    """Draw a clip's background (a photo of its split's pool or procedural), camera and quality.

    Args:
        photo_hw: callable giving a photograph's ``(H, W)``.
    """
    if rng.random() < P_PROCEDURAL or not photos:
        kind = PROCEDURAL_KINDS[int(rng.integers(len(PROCEDURAL_KINDS)))]
        path, seed = "", int(rng.integers(2**31))
        bg_hw = procedural_size(size)
    else:
        kind, path, seed = "photo", photos[int(rng.integers(len(photos)))], 0
        bg_hw = photo_hw(path)
    flip = bool(rng.random() < 0.5)
    crops = camera_crops(rng, bg_hw, size, num_frames)
    gains = tuple(_round(g) for g in rng.uniform(*CHANNEL_GAIN, 3))
    blur = _round(rng.uniform(*BLUR_SIGMA), 2) if rng.random() < P_BLUR else 0.0
    return VisualConditions(
        kind,
        path,
        seed,
        flip,
        crops,
        brightness=_round(rng.uniform(*BRIGHTNESS)),
        contrast=_round(rng.uniform(*CONTRAST)),
        saturation=_round(rng.uniform(*SATURATION)),
        channel_gains=gains,
        blur_sigma=blur,
        jpeg_quality=int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)),
    )
