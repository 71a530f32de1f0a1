"""Noise of AVSS-Synth v2: stationary coloured noise, speech babble, off-screen sounds, SNR scaling.

Every function here is deterministic given its arguments; the random choices are drawn beforehand
(``conditions.sample_audio_conditions``) and recorded in ``conditions.json``. Tracks are float64
``(N,)`` arrays, ``N`` = samples of the clip.
"""

from typing import Optional, Sequence, Tuple

import numpy as np

from .media import load_sound

STATIONARY_KINDS = ("white", "pink", "brown")
NOISE_KINDS = STATIONARY_KINDS + ("babble", "offscreen")
# power-spectrum exponent: P(f) ~ 1 / f**alpha
_SPECTRAL_EXPONENT = {"white": 0.0, "pink": 1.0, "brown": 2.0}
FADE_S = 0.02


def rms(x: np.ndarray) -> float:
    """Root mean square of a track (0 for an empty one)."""
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def snr_db(signal: np.ndarray, noise: np.ndarray) -> float:
    """``10 log10(sum signal^2 / sum noise^2)`` over the whole track (inf without noise)."""
    p_noise = float(np.sum(np.square(noise, dtype=np.float64)))
    p_signal = float(np.sum(np.square(signal, dtype=np.float64)))
    if p_noise == 0:
        return float("inf")
    return 10 * np.log10(max(p_signal, 1e-30) / p_noise)


def scale_to_snr(signal: np.ndarray, noise: np.ndarray, target_db: float) -> np.ndarray:
    """``noise`` scaled so that ``snr_db(signal, scaled) == target_db``."""
    p_noise = float(np.sum(np.square(noise, dtype=np.float64)))
    if p_noise == 0:
        raise ValueError("cannot scale an all-zero noise track to an SNR")
    p_signal = float(np.sum(np.square(signal, dtype=np.float64)))
    return noise * np.sqrt(p_signal / (p_noise * 10 ** (target_db / 10)))


def colored_noise(kind: str, n: int, seed: int) -> np.ndarray:
    """White, pink (1/f) or brown (1/f^2) Gaussian noise of unit RMS, shaped in the spectrum."""
    if kind not in _SPECTRAL_EXPONENT:
        raise ValueError(f"unknown stationary noise '{kind}', expected one of {STATIONARY_KINDS}")
    white = np.random.default_rng(seed).standard_normal(n)
    alpha = _SPECTRAL_EXPONENT[kind]
    if alpha:
        spectrum = np.fft.rfft(white)
        freqs = np.fft.rfftfreq(n)
        freqs[0] = freqs[1] if n > 1 else 1.0
        white = np.fft.irfft(spectrum / freqs ** (alpha / 2), n)
    white -= white.mean()
    return white / (rms(white) + 1e-12)


def _fade_envelope(n: int, start: int, end: int, sample_rate: int) -> np.ndarray:
    """1 on ``[start, end)`` with 20 ms linear fades inside it, 0 elsewhere."""
    env = np.zeros(n)
    start, end = max(0, start), min(n, end)
    if end <= start:
        return env
    env[start:end] = 1
    fade = min(max(1, int(FADE_S * sample_rate)), (end - start) // 2)
    if fade > 0:
        ramp = np.linspace(0, 1, fade, endpoint=False)
        env[start : start + fade] = ramp
        env[end - fade : end] = ramp[::-1]
    return env


def looped(wave: np.ndarray, n: int, offset: int, gap: int = 0) -> np.ndarray:
    """``wave`` (plus ``gap`` zeros) repeated to ``n`` samples, starting ``offset`` samples in."""
    unit = np.concatenate([wave.astype(np.float64), np.zeros(gap)])
    start = offset % len(unit)
    reps = (start + n) // len(unit) + 1
    return np.tile(unit, reps)[start : start + n]


def talker_track(
    files: Sequence[str], n: int, sample_rate: int, offset_s: float, gap_s: float
) -> np.ndarray:
    """One off-screen talker: its utterances one after the other (``gap_s`` apart), looped, unit
    RMS."""
    gap = int(round(gap_s * sample_rate))
    parts = []
    for f in files:
        parts += [load_sound(f, sample_rate), np.zeros(gap)]
    track = looped(np.concatenate(parts), n, int(round(offset_s * sample_rate)))
    return track / (rms(track) + 1e-12)


def event_track(
    path: str,
    n: int,
    sample_rate: int,
    start_s: float,
    end_s: float,
    offset_s: float = 0.0,
) -> np.ndarray:
    """An off-screen sound looped from ``start_s`` to ``end_s`` (fades at both ends); its RMS over
    the time it plays is 1."""
    wave = load_sound(path, sample_rate)
    track = looped(wave, n, int(round(offset_s * sample_rate)), int(0.1 * sample_rate))
    a, b = int(round(start_s * sample_rate)), int(round(end_s * sample_rate))
    env = _fade_envelope(n, a, b, sample_rate)
    active = track[max(0, a) : min(n, b)]
    return track * env / (rms(active) + 1e-12)


def peak_limit(*tracks: np.ndarray, peak: float) -> Tuple[float, Tuple[np.ndarray, ...]]:
    """Scale every track by the same factor so that their sum peaks at most at ``peak``."""
    total = np.sum(tracks, axis=0)
    top = float(np.abs(total).max()) if total.size else 0.0
    factor = peak / top if top > peak else 1.0
    return factor, tuple(t * factor for t in tracks)


def mix_at_snr(
    signal: np.ndarray, noise: Optional[np.ndarray], snr: Optional[float], peak: float
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mix ``signal`` with ``noise`` scaled to ``snr`` dB (None: no noise), peak-limited.

    Returns:
        mix, the scaled signal and the scaled noise (``mix == signal + noise``), float64 ``(N,)``.
    """
    if noise is None or snr is None:
        scaled = np.zeros_like(signal)
    else:
        scaled = scale_to_snr(signal, noise, snr)
    _, (sig, noi) = peak_limit(signal, scaled, peak=peak)
    return sig + noi, sig, noi
