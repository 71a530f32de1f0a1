"""Audio front-end edges: file reading, integer waveforms, config keys, clip-length fitting."""

import numpy as np
import pytest
import soundfile as sf
import torch
from detectron2.config import get_cfg

from ovavss_d2 import add_ovavss_config
from ovavss_d2.data.audio import (
    AudioParams,
    frame_log_mel_patches,
    load_frame_log_mel_patches,
    prepare_waveform,
    read_audio,
)

RATE = 16000


def _tone(seconds: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * (300 + 200 * t) * t)).astype(np.float32)


def test_read_audio_gives_float32_channels_first_for_mono(tmp_path):
    pcm = (np.arange(-5, 5, dtype=np.int16) * 1000)[:, None]
    path = tmp_path / "mono.wav"
    sf.write(path, pcm, RATE, subtype="PCM_16")
    waveform, rate = read_audio(path)
    assert rate == RATE and waveform.dtype == torch.float32 and waveform.shape == (1, 10)
    torch.testing.assert_close(waveform[0], torch.from_numpy(pcm[:, 0] / 32768.0).float())


def test_integer_waveforms_are_scaled_and_bool_is_rejected():
    pcm = np.array([-32768, -16384, 0, 16384, 32767], dtype=np.int16)
    mono = prepare_waveform(pcm, RATE, AudioParams())
    assert mono.dtype == torch.float32
    torch.testing.assert_close(mono, torch.tensor([-1.0, -0.5, 0.0, 0.5, 32767 / 32768]))
    with pytest.raises(ValueError, match=r"^clip\.wav: unsupported audio dtype torch\.bool"):
        prepare_waveform(np.ones(8, dtype=bool), RATE, AudioParams(), source="clip.wav")


def test_params_read_every_config_key():
    cfg = get_cfg()
    add_ovavss_config(cfg)
    a = cfg.INPUT.AUDIO
    a.SAMPLE_RATE, a.NUM_MEL_BINS, a.WINDOW_SECONDS, a.HOP_SECONDS = 8000, 32, 0.05, 0.02
    a.MEL_MIN_HZ, a.MEL_MAX_HZ, a.LOG_OFFSET = 50.0, 3000.0, 0.001
    a.PATCH_FRAMES, a.SECONDS_PER_FRAME = 48, 0.5
    assert AudioParams.from_config(cfg) == AudioParams(
        sample_rate=8000,
        num_mel_bins=32,
        window_seconds=0.05,
        hop_seconds=0.02,
        mel_min_hz=50.0,
        mel_max_hz=3000.0,
        log_offset=0.001,
        patch_frames=48,
        seconds_per_frame=0.5,
    )


def test_longer_audio_is_cut_at_the_clip_length():
    """2 frames of 0.5 s need 1 s: the second patch (0.5 s to 1.475 s) sees silence after 1 s."""
    params = AudioParams(seconds_per_frame=0.5)
    wave = _tone(3.0)
    got = frame_log_mel_patches(wave, RATE, 2, params)
    cut = frame_log_mel_patches(wave[:RATE], RATE, 2, params)
    torch.testing.assert_close(got, cut)
    full = frame_log_mel_patches(wave, RATE, 6, params)[:2]  # 3 s needed: nothing cut
    assert not torch.allclose(got[1], full[1])


def test_shorter_audio_is_zero_padded_at_the_end():
    wave = _tone(0.7)
    padded = np.concatenate([wave, np.zeros(RATE - len(wave), dtype=np.float32)])
    torch.testing.assert_close(
        frame_log_mel_patches(wave, RATE, 1), frame_log_mel_patches(padded, RATE, 1)
    )


def test_num_frames_must_be_positive():
    assert frame_log_mel_patches(_tone(1.0), RATE, 1).shape == (1, 1, 96, 64)
    with pytest.raises(ValueError, match=r"^a\.wav: num_frames must be positive, got 0"):
        frame_log_mel_patches(_tone(1.0), RATE, 0, source="a.wav")


def test_load_returns_the_requested_frames_only(tmp_path):
    path = tmp_path / "clip.wav"
    sf.write(path, _tone(3.0), RATE, subtype="FLOAT")
    every = load_frame_log_mel_patches(path, 3)
    picked = load_frame_log_mel_patches(path, 3, frame_indices=[2, 0])
    assert picked.shape == (2, 1, 96, 64)
    torch.testing.assert_close(picked, every[[2, 0]])


def test_waveform_shapes_and_dtypes():
    params = AudioParams()
    out = prepare_waveform(np.array([[0.5, -0.5], [0.25, 0.25]]), RATE, params)  # (C, N) = (2, 2)
    assert out.dtype == torch.float32  # from float64
    torch.testing.assert_close(out, torch.tensor([0.375, -0.125]))
    with pytest.raises(
        ValueError, match=r"more channels than samples; pass it channels-first, \(C, N\)"
    ):
        prepare_waveform(np.zeros((3, 2), dtype=np.float32), RATE, params)
    with pytest.raises(
        ValueError, match=r"expected a \(N,\) or \(C, N\) waveform, got shape \(1, 2"
    ):
        prepare_waveform(np.zeros((1, 2, 3), dtype=np.float32), RATE, params)


def test_one_extra_sample_is_cut_too():
    """Patches of 0.975 s every 0.5 s: the last one reaches past the 1 s clip, where the extra
    sample of a 16001-sample waveform must not show."""
    params = AudioParams(seconds_per_frame=0.5)
    wave = _tone(1.0)
    longer = np.concatenate([wave, np.ones(1, dtype=np.float32)])
    torch.testing.assert_close(
        frame_log_mel_patches(longer, RATE, 2, params), frame_log_mel_patches(wave, RATE, 2, params)
    )
