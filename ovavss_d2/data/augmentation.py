"""Training-time augmentation of a clip: waveform noise / gain / shift and frame colour / scale.

``WaveformAugmentation`` acts on the mono waveform before the log-mel front-end;
``build_frame_augmentations`` gives Detectron2 augmentations that ``AVSSDatasetMapper`` draws once
per clip and applies to every frame (labels are only resized, never recoloured). Config keys:
``INPUT.AUDIO.AUGMENT.*`` and ``INPUT.AUGMENT.*`` (all off by default).
"""

import json
import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from detectron2.data import transforms as T
from fvcore.transforms.transform import Transform

logger = logging.getLogger(__name__)

NOISE_SUFFIXES = (".wav", ".flac", ".ogg")

__all__ = [
    "WaveformAugmentation",
    "RandomScale",
    "SaturationTransform",
    "RandomSaturationPerFrame",
    "build_frame_augmentations",
    "build_waveform_augmentation",
    "find_noise_files",
]


def find_noise_files(path: str) -> List[str]:
    """Noise recordings of a folder (searched recursively) or of a generator's ``noise_pools.json``
    (its ``train`` pool), sorted; FileNotFoundError / ValueError naming ``path`` otherwise."""
    p = Path(path)
    if p.is_file() and p.suffix == ".json":
        with open(p) as f:
            pools = json.load(f)
        if "train" not in pools:
            raise ValueError(f"{p}: no 'train' pool (expected the generator's noise_pools.json)")
        files = sorted(pools["train"])
        missing = [f for f in files if not os.path.isfile(f)]
        if missing:
            raise FileNotFoundError(
                f"{p}: {len(missing)} listed noise files missing: {missing[:3]}"
            )
    elif p.is_dir():
        files = sorted(str(f) for f in p.rglob("*") if f.suffix.lower() in NOISE_SUFFIXES)
    else:
        raise FileNotFoundError(f"noise recordings not found: {p} (a folder or noise_pools.json)")
    if not files:
        raise ValueError(f"{p}: holds no .wav / .flac / .ogg noise recording")
    return files


@lru_cache(maxsize=256)
def _load_noise(path: str, sample_rate: int) -> torch.Tensor:
    """A noise recording as float32 mono ``(N,)`` at ``sample_rate``."""
    from .audio import AudioParams, prepare_waveform, read_audio

    waveform, rate = read_audio(path)
    return prepare_waveform(waveform, rate, AudioParams(sample_rate=sample_rate), source=path)


class WaveformAugmentation:
    """Mix a random noise recording at a random SNR, apply a random gain and a small time shift."""

    def __init__(
        self,
        noise_files: Sequence[str],
        sample_rate: int,
        *,
        noise_prob: float = 0.8,
        snr_range: Tuple[float, float] = (0.0, 30.0),
        gain_db_range: Tuple[float, float] = (-6.0, 6.0),
        max_shift_seconds: float = 0.1,
    ):
        """
        Args:
            noise_files: recordings to draw the noise from (may be empty: no noise is mixed).
            sample_rate: rate of the waveforms passed to ``__call__``.
            noise_prob: chance of mixing noise into a clip.
            snr_range: dB range of the clip's SNR over the added noise (uniform).
            gain_db_range: dB range of the gain applied to the result (uniform).
            max_shift_seconds: the waveform moves by up to this much either way (zero-filled).
        """
        if snr_range[0] > snr_range[1] or gain_db_range[0] > gain_db_range[1]:
            raise ValueError(f"bad ranges: snr {snr_range}, gain {gain_db_range}")
        self.noise_files = tuple(noise_files)
        self.sample_rate = int(sample_rate)
        self.noise_prob = float(noise_prob)
        self.snr_range = tuple(snr_range)
        self.gain_db_range = tuple(gain_db_range)
        self.max_shift = int(round(max_shift_seconds * sample_rate))

    def __repr__(self) -> str:
        return (
            f"WaveformAugmentation({len(self.noise_files)} noise files, p={self.noise_prob}, "
            f"snr={self.snr_range}, gain_db={self.gain_db_range}, max_shift={self.max_shift})"
        )

    def _noise(self, n: int, rng: np.random.RandomState) -> torch.Tensor:
        path = self.noise_files[rng.randint(len(self.noise_files))]
        noise = _load_noise(path, self.sample_rate)
        reps = n // noise.numel() + 2
        start = rng.randint(noise.numel())
        return noise.repeat(reps)[start : start + n]

    def __call__(self, wav: torch.Tensor, rng=np.random) -> torch.Tensor:
        """Augment a mono float waveform ``(N,)``; returns a new ``(N,)`` tensor."""
        out = wav.clone()
        if self.max_shift > 0:
            shift = int(rng.randint(-self.max_shift, self.max_shift + 1))
            out = torch.roll(out, shift)
            if shift > 0:
                out[:shift] = 0
            elif shift < 0:
                out[shift:] = 0
        if self.noise_files and rng.rand() < self.noise_prob:
            noise = self._noise(out.numel(), rng).to(out)
            p_sig, p_noise = out.pow(2).mean(), noise.pow(2).mean()
            if p_noise > 0 and p_sig > 0:
                snr = rng.uniform(*self.snr_range)
                out = out + noise * torch.sqrt(p_sig / (p_noise * 10 ** (snr / 10)))
        gain = 10 ** (rng.uniform(*self.gain_db_range) / 20)
        return out * gain


def build_waveform_augmentation(cfg, is_train: bool) -> Optional[WaveformAugmentation]:
    """``INPUT.AUDIO.AUGMENT`` -> a WaveformAugmentation, or None (disabled or at test time)."""
    a = cfg.INPUT.AUDIO.AUGMENT
    if not (is_train and a.ENABLED):
        return None
    files = find_noise_files(a.NOISE_PATH) if a.NOISE_PATH else []
    return WaveformAugmentation(
        files,
        cfg.INPUT.AUDIO.SAMPLE_RATE,
        noise_prob=a.NOISE_PROB,
        snr_range=tuple(a.SNR_RANGE),
        gain_db_range=tuple(a.GAIN_DB_RANGE),
        max_shift_seconds=a.MAX_SHIFT_SECONDS,
    )


class SaturationTransform(Transform):
    """Blend each image with its own greyscale: ``grey + factor * (image - grey)``."""

    def __init__(self, factor: float):
        super().__init__()
        self._set_attributes(locals())

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        x = img.astype(np.float32)
        grey = (x[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
        out = grey + self.factor * (x - grey)
        if img.dtype == np.uint8:
            return np.clip(np.rint(out), 0, 255).astype(np.uint8)
        return out

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        return coords

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        return segmentation


class RandomSaturationPerFrame(T.Augmentation):
    """Random saturation whose greyscale is computed per frame (Detectron2's RandomSaturation
    blends every frame with the greyscale of the frame it was drawn on)."""

    def __init__(self, intensity_min: float, intensity_max: float):
        super().__init__()
        self._init(locals())

    def get_transform(self, image):
        return SaturationTransform(np.random.uniform(self.intensity_min, self.intensity_max))


class RandomScale(T.Augmentation):
    """Resize by a random factor in ``[min_scale, max_scale]`` (scale jitter)."""

    def __init__(self, min_scale: float, max_scale: float, interp=None):
        super().__init__()
        if not 0 < min_scale <= max_scale:
            raise ValueError(f"scale range must satisfy 0 < min <= max, got {min_scale, max_scale}")
        from PIL import Image

        self._init(locals())
        self.interp = Image.BILINEAR if interp is None else interp

    def get_transform(self, image):
        h, w = image.shape[:2]
        s = np.random.uniform(self.min_scale, self.max_scale)
        new_h, new_w = max(1, int(round(h * s))), max(1, int(round(w * s)))
        return T.ResizeTransform(h, w, new_h, new_w, self.interp)


def build_frame_augmentations(cfg, is_train: bool) -> List[T.Augmentation]:
    """``INPUT.AUGMENT`` -> augmentations appended after resize / crop / flip (training only)."""
    a = cfg.INPUT.AUGMENT
    augs: List[T.Augmentation] = []
    if not is_train:
        return augs
    if a.SCALE_JITTER.ENABLED:
        augs.append(RandomScale(a.SCALE_JITTER.MIN_SCALE, a.SCALE_JITTER.MAX_SCALE))
    if a.COLOR_JITTER.ENABLED:
        c = a.COLOR_JITTER
        augs += [
            T.RandomBrightness(*c.BRIGHTNESS),
            T.RandomContrast(*c.CONTRAST),  # blends with the mean of the frame drawn on
            RandomSaturationPerFrame(*c.SATURATION),
        ]
    return augs
