"""The log-mel front-end against a frame-by-frame NumPy computation of VGGish's framing.

VGGish cuts STFT frame ``k`` of a patch starting at sample ``s`` from ``[s + k*hop, s + k*hop +
win)``, multiplies it by a periodic Hann window, zero-pads it at its end to the FFT length and
takes the magnitude spectrum. The mel filters are torchaudio's in both (the module docstring says
why), so what is compared here is the framing, window, padding, magnitude and log.
"""

import numpy as np
import pytest
import torch
import torchaudio

from ovavss_d2.data.audio import AudioParams, frame_log_mel_patches, log_mel_patches


def reference_patch(mono: np.ndarray, start: int, params: AudioParams) -> np.ndarray:
    """``(L, M)`` log-mel patch of ``mono`` (at ``params.sample_rate``) from sample ``start``."""
    win, hop = params.window_samples, params.hop_samples
    n_fft = 1 << int(np.ceil(np.log2(win)))
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic Hann
    fbank = torchaudio.functional.melscale_fbanks(
        n_fft // 2 + 1,
        params.mel_min_hz,
        params.mel_max_hz,
        params.num_mel_bins,
        params.sample_rate,
        norm=None,
        mel_scale="htk",
    ).numpy()  # (F, M)
    rows = []
    for k in range(params.patch_frames):
        lo = start + k * hop
        frame = np.zeros(win)
        src = mono[max(lo, 0) : max(lo + win, 0)]
        frame[max(-lo, 0) : max(-lo, 0) + len(src)] = src  # zeros outside the signal
        spectrum = np.abs(np.fft.rfft(frame * window, n=n_fft))
        rows.append(np.log(spectrum @ fbank + params.log_offset))
    return np.stack(rows)


@pytest.fixture(scope="module")
def signal():
    """1.6 s at 16 kHz: a chirp with noise, so that any shift of the windows changes the values."""
    rng = np.random.default_rng(0)
    t = np.arange(int(1.6 * 16000)) / 16000
    chirp = np.sin(2 * np.pi * (200 * t + 1500 * t**2))
    return (
        0.5 * chirp * (1 + np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.standard_normal(t.size)
    ).astype(np.float32)


@pytest.mark.parametrize("start_seconds", [0.0, 0.3137, 1.0, -0.05])
def test_patch_matches_reference(signal, start_seconds):
    params = AudioParams()
    got = log_mel_patches(signal, 16000, [start_seconds], params)[0, 0].numpy()  # (L, M)
    want = reference_patch(signal.astype(np.float64), int(round(start_seconds * 16000)), params)
    assert got.shape == want.shape == (96, 64)
    np.testing.assert_allclose(got, want, atol=2e-3, rtol=0)


def test_patch_matches_reference_yamnet_offset_and_other_rate(signal):
    """Another window/hop/FFT length (8 kHz, 32 ms window -> FFT 256) and YAMNet's log offset."""
    params = AudioParams(
        sample_rate=8000, window_seconds=0.032, hop_seconds=0.01, log_offset=0.001, mel_max_hz=3800
    )
    mono8k = signal[::2]  # 16 kHz samples taken as 8 kHz audio: no resampling involved
    got = log_mel_patches(mono8k, 8000, [0.2], params)[0, 0].numpy()
    want = reference_patch(mono8k.astype(np.float64), 1600, params)
    np.testing.assert_allclose(got, want, atol=2e-3, rtol=0)


def test_frame_patches_start_at_each_frame(signal):
    params = AudioParams(seconds_per_frame=0.5)
    got = frame_log_mel_patches(torch.from_numpy(signal[:16000]), 16000, 2, params)
    mono = signal[:16000].astype(np.float64)
    for t in range(2):
        want = reference_patch(mono, t * 8000, params)
        np.testing.assert_allclose(got[t, 0].numpy(), want, atol=2e-3, rtol=0)
