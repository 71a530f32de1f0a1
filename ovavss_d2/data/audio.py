"""Audio front-end: read, mix to mono, resample, and cut VGGish-style log-mel patches per frame.

Pure functions; nothing here keeps state. The mapper and the demo compose them:

* ``read_audio(path)``: file -> ``(C, N)`` float32 waveform and its sample rate, as a tensor
  (read by :func:`ovavss_d2.utils.video_io.read_audio_file`, the one media reader: soundfile,
  wav / flac / ogg; ``torchaudio.load`` needs FFmpeg libraries that are not usable here).
* ``prepare_waveform(waveform, sample_rate, params)``: any channel count and rate -> mono ``(N,)``
  at ``params.sample_rate``, with a check for NaN / inf samples.
* ``log_mel_patches(waveform, sample_rate, start_seconds, params)``: one patch per start time
  (the demo pairs each video frame with the second of audio around it).
* ``frame_log_mel_patches(waveform, sample_rate, num_frames, params)``: the AVSBench alignment,
  frame ``t`` gets the patch starting at ``t * params.seconds_per_frame`` seconds; audio shorter
  than the clip is zero-padded and longer audio truncated, both logged.
* ``load_frame_log_mel_patches(path, num_frames, params)``: the two above for a file.

Shape letters: ``C`` channels, ``N`` samples, ``P`` patches, ``L`` STFT frames per patch (96),
``M`` mel bands (64).

A patch follows VGGish's front-end: periodic Hann window of ``window_seconds`` (25 ms), hop of
``hop_seconds`` (10 ms), FFT length the next power of two (512 at 16 kHz), magnitude spectrum,
``M`` HTK-scale mel bands between ``mel_min_hz`` and ``mel_max_hz``, ``log(mel + log_offset)``,
and no centre padding, so a patch of ``L`` STFT frames covers ``(L - 1) * hop + window`` seconds
(0.975 s) from its start. The mel filters are torchaudio's (triangles linear in Hz between
HTK-mel-spaced edges); VGGish builds its triangles in mel space, so values differ slightly from
VGGish's own NumPy front-end (same shape and scale).
"""

import logging
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, Optional, Sequence, Set, Tuple, Union

import numpy as np
import torch
import torchaudio

from ..utils.video_io import read_audio_file

logger = logging.getLogger(__name__)

__all__ = [
    "AudioParams",
    "read_audio",
    "prepare_waveform",
    "log_mel_patches",
    "frame_log_mel_patches",
    "load_frame_log_mel_patches",
]

WaveformLike = Union[np.ndarray, torch.Tensor]


@dataclass(frozen=True)
class AudioParams:
    """Log-mel front-end parameters (config keys ``INPUT.AUDIO.*``; defaults are VGGish's)."""

    sample_rate: int = 16000  # Hz; audio is resampled to this rate
    num_mel_bins: int = 64  # M
    window_seconds: float = 0.025
    hop_seconds: float = 0.010
    mel_min_hz: float = 125.0
    mel_max_hz: float = 7500.0
    log_offset: float = 0.01  # log(mel + offset): 0.01 VGGish, 0.001 YAMNet
    patch_frames: int = 96  # L
    seconds_per_frame: float = 1.0  # frame t uses the patch starting at t * seconds_per_frame

    @classmethod
    def from_config(cls, cfg) -> "AudioParams":
        """Read ``cfg.INPUT.AUDIO``."""
        a = cfg.INPUT.AUDIO
        return cls(
            sample_rate=int(a.SAMPLE_RATE),
            num_mel_bins=int(a.NUM_MEL_BINS),
            window_seconds=float(a.WINDOW_SECONDS),
            hop_seconds=float(a.HOP_SECONDS),
            mel_min_hz=float(a.MEL_MIN_HZ),
            mel_max_hz=float(a.MEL_MAX_HZ),
            log_offset=float(a.LOG_OFFSET),
            patch_frames=int(a.PATCH_FRAMES),
            seconds_per_frame=float(a.SECONDS_PER_FRAME),
        )

    @property
    def window_samples(self) -> int:
        """STFT window length in samples."""
        return int(round(self.window_seconds * self.sample_rate))

    @property
    def hop_samples(self) -> int:
        """STFT hop in samples."""
        return int(round(self.hop_seconds * self.sample_rate))

    @property
    def patch_samples(self) -> int:
        """Samples covered by one patch: ``(L - 1) * hop + window``."""
        return (self.patch_frames - 1) * self.hop_samples + self.window_samples


def read_audio(path: Union[str, os.PathLike]) -> Tuple[torch.Tensor, int]:
    """:func:`~ovavss_d2.utils.video_io.read_audio_file` with the waveform as a tensor.

    Returns:
        ``(waveform, sample_rate)``: float32 ``(C, N)`` in [-1, 1] and the rate in Hz.

    Raises:
        MediaError: (a ``ValueError``; ``MediaFileNotFoundError``, also a ``FileNotFoundError``,
            for a missing file) the file is missing, unreadable, empty, or holds NaN / inf
            samples; the message names it.
    """
    waveform, sample_rate = read_audio_file(path)
    return torch.from_numpy(waveform), sample_rate


def _check_finite(waveform: torch.Tensor, source: str) -> None:
    """Raise a ValueError naming ``source`` if any sample is NaN or infinite."""
    samples = waveform.detach().cpu().numpy()  # NumPy: faster than torch on small arrays
    if not np.isfinite(samples).all():
        bad = int((~np.isfinite(samples)).sum())
        raise ValueError(f"{source}: audio holds {bad} NaN or infinite samples")


def prepare_waveform(
    waveform: WaveformLike, sample_rate: int, params: AudioParams, source: str = "<waveform>"
) -> torch.Tensor:
    """Mix to mono and resample to ``params.sample_rate``.

    Args:
        waveform: ``(N,)`` mono or ``(C, N)`` channels-first samples (NumPy or torch, any float or
            integer dtype; integers are scaled to [-1, 1]).
        sample_rate: rate of ``waveform`` in Hz (positive integer).
        params: front-end parameters.
        source: name used in error messages (a file name).

    Returns:
        float32 ``(N',)`` mono waveform at ``params.sample_rate``.
    """
    if isinstance(waveform, np.ndarray):
        waveform = torch.from_numpy(np.ascontiguousarray(waveform))
    wav = torch.as_tensor(waveform)
    if not wav.is_floating_point():
        if wav.dtype == torch.bool or wav.is_complex():
            raise ValueError(f"{source}: unsupported audio dtype {wav.dtype}")
        info = torch.iinfo(wav.dtype)
        wav = wav.to(torch.float32) / float(max(abs(info.min), info.max))
    wav = wav.to(torch.float32)
    if wav.ndim == 2:
        if wav.shape[0] > wav.shape[1]:
            raise ValueError(
                f"{source}: waveform of shape {tuple(wav.shape)} has more channels than samples; "
                "pass it channels-first, (C, N)"
            )
        wav = wav.mean(dim=0)  # (C, N) -> (N,)
    elif wav.ndim != 1:
        raise ValueError(
            f"{source}: expected a (N,) or (C, N) waveform, got shape {tuple(wav.shape)}"
        )
    if wav.numel() == 0:
        raise ValueError(f"{source}: audio holds no samples")
    _check_finite(wav, source)
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"{source}: sample rate must be a positive integer, got {sample_rate}")
    if int(sample_rate) != params.sample_rate:
        with torch.no_grad():
            wav = _resampler(int(sample_rate), params.sample_rate)(wav)
    return wav.contiguous()


@lru_cache(maxsize=8)
def _resampler(orig_rate: int, new_rate: int) -> torchaudio.transforms.Resample:
    """A resampler per rate pair: building its windowed-sinc kernel costs more than applying it."""
    return torchaudio.transforms.Resample(orig_rate, new_rate)


def _fft_length(params: AudioParams) -> int:
    return 2 ** int(math.ceil(math.log2(params.window_samples)))


@lru_cache(maxsize=8)
def _mel_transform(params: AudioParams) -> torchaudio.transforms.MelSpectrogram:
    window = params.window_samples
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=params.sample_rate,
        n_fft=_fft_length(params),
        win_length=window,
        hop_length=params.hop_samples,
        f_min=params.mel_min_hz,
        f_max=params.mel_max_hz,
        n_mels=params.num_mel_bins,
        window_fn=torch.hann_window,  # periodic Hann, as VGGish
        power=1.0,  # magnitude spectrum, as VGGish
        center=False,
        norm=None,
        mel_scale="htk",
    )


def _patches_from_mono(
    mono: torch.Tensor, start_samples: Sequence[int], params: AudioParams
) -> torch.Tensor:
    """``(N,)`` mono at ``params.sample_rate`` -> ``(P, 1, L, M)``; outside the signal is zeros."""
    # torch.stft centres a window shorter than the FFT inside each FFT frame; starting the segment
    # that many samples early makes STFT frame k's window cover [start + k*hop, start + k*hop + win)
    # as in VGGish (which zero-pads each windowed frame at its end instead).
    n_fft = _fft_length(params)
    offset = (n_fft - params.window_samples) // 2
    span = (params.patch_frames - 1) * params.hop_samples + n_fft
    segments = torch.zeros(len(start_samples), span, dtype=torch.float32)  # (P, span)
    n = mono.shape[0]
    for i, start in enumerate(start_samples):
        first = start - offset
        lo, hi = max(first, 0), min(first + span, n)
        if hi > lo:
            segments[i, lo - first : hi - first] = mono[lo:hi]
    with torch.no_grad():
        mel = _mel_transform(params)(segments)  # (P, M, L)
    mel = torch.log(mel + params.log_offset)
    return mel.transpose(1, 2).unsqueeze(1).contiguous()  # (P, M, L) -> (P, 1, L, M)


def log_mel_patches(
    waveform: WaveformLike,
    sample_rate: int,
    start_seconds: Sequence[float],
    params: AudioParams = AudioParams(),
    source: str = "<waveform>",
) -> torch.Tensor:
    """One log-mel patch per start time, for any frame timing (the demo's case).

    Args:
        waveform: ``(N,)`` or ``(C, N)`` samples at ``sample_rate``.
        sample_rate: Hz.
        start_seconds: ``P`` patch start times in seconds; a patch reaching outside the signal
            (negative start, or past the end) sees zeros there.
        params: front-end parameters.
        source: name used in error messages.

    Returns:
        float32 ``(P, 1, L, M)``.
    """
    mono = prepare_waveform(waveform, sample_rate, params, source)
    starts = [int(round(float(s) * params.sample_rate)) for s in start_seconds]
    return _patches_from_mono(mono, starts, params)


def frame_log_mel_patches(
    waveform: WaveformLike,
    sample_rate: int,
    num_frames: int,
    params: AudioParams = AudioParams(),
    frame_indices: Optional[Sequence[int]] = None,
    source: str = "<waveform>",
) -> torch.Tensor:
    """Patches aligned to the frames of a clip: frame ``t`` gets the second starting at ``t * spf``.

    The waveform is fitted to the clip length ``num_frames * params.seconds_per_frame``: shorter
    audio is zero-padded and longer audio truncated. Either is logged (at DEBUG level when the
    difference is under one STFT hop, at INFO level otherwise).

    Args:
        waveform: ``(N,)`` or ``(C, N)`` samples at ``sample_rate``.
        sample_rate: Hz.
        num_frames: frames in the clip (``T_clip``).
        params: front-end parameters.
        frame_indices: which frames to return patches for (default: all ``T_clip``).
        source: name used in messages (a file name).

    Returns:
        float32 ``(T, 1, L, M)``, ``T = len(frame_indices)``.
    """
    if num_frames <= 0:
        raise ValueError(f"{source}: num_frames must be positive, got {num_frames}")
    indices = list(range(num_frames)) if frame_indices is None else [int(t) for t in frame_indices]
    bad = [t for t in indices if not 0 <= t < num_frames]
    if bad:
        raise ValueError(f"{source}: frame indices {bad} outside a clip of {num_frames} frames")
    mono = prepare_waveform(waveform, sample_rate, params, source)
    expected = int(round(num_frames * params.seconds_per_frame * params.sample_rate))
    diff = mono.shape[0] - expected
    if diff != 0:
        level = logging.DEBUG if abs(diff) < params.hop_samples else logging.INFO
        action = "zero-padded" if diff < 0 else "truncated"
        first_time = (source, action) not in _LENGTH_LOGGED
        _LENGTH_LOGGED.add((source, action))
        _LENGTH_MISMATCHES[(source, action)] = expected / params.sample_rate
        logger.log(
            level if first_time else logging.DEBUG,
            "%s: audio is %.3f s, the clip's %d frames need %.3f s: %s",
            source,
            mono.shape[0] / params.sample_rate,
            num_frames,
            expected / params.sample_rate,
            action,
        )
        mono = mono[:expected] if diff > 0 else torch.nn.functional.pad(mono, (0, -diff))
    step = params.seconds_per_frame * params.sample_rate
    return _patches_from_mono(mono, [int(round(t * step)) for t in indices], params)


# (source, "zero-padded" | "truncated"): logged at INFO once per process (later loads at DEBUG),
# and counted since the last audio_length_summary() (end of an evaluation or of training).
_LENGTH_LOGGED: Set[Tuple[str, str]] = set()
_LENGTH_MISMATCHES: Dict[Tuple[str, str], float] = {}


def audio_length_summary(reset: bool = True) -> Optional[str]:
    """A line counting the clips whose audio was padded or truncated since the last call."""
    if not _LENGTH_MISMATCHES:
        return None
    actions = [a for _, a in _LENGTH_MISMATCHES]
    line = (
        f"{len(set(s for s, _ in _LENGTH_MISMATCHES))} clips had audio of another length than "
        f"their frames ({actions.count('zero-padded')} zero-padded, "
        f"{actions.count('truncated')} truncated)"
    )
    if reset:
        _LENGTH_MISMATCHES.clear()
    return line


def load_frame_log_mel_patches(
    path: Union[str, os.PathLike],
    num_frames: int,
    params: AudioParams = AudioParams(),
    frame_indices: Optional[Sequence[int]] = None,
) -> torch.Tensor:
    """``read_audio`` + ``frame_log_mel_patches``: float32 ``(T, 1, L, M)`` for a clip's audio."""
    waveform, sample_rate = read_audio(path)
    return frame_log_mel_patches(
        waveform, sample_rate, num_frames, params, frame_indices, source=os.fspath(path)
    )
