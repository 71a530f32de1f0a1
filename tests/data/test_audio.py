"""ovavss_d2.data.audio: alignment of patches to frames, input formats, padding, bad audio, file
reading, config keys, clip-length fitting, the once-per-clip length log line, and the log-mel
front-end against a frame-by-frame NumPy reference of VGGish's framing (below)."""

import logging

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
from detectron2.config import get_cfg

from ovavss_d2 import add_ovavss_config
from ovavss_d2.data import audio as audio_module
from ovavss_d2.data.audio import (
    AudioParams,
    audio_length_summary,
    frame_log_mel_patches,
    load_frame_log_mel_patches,
    log_mel_patches,
    prepare_waveform,
    read_audio,
)
from ovavss_d2.utils.testing import write_tone

SILENCE = float(np.log(AudioParams().log_offset))


def _energy(patches):
    """Max log-mel value of each patch, (P,)."""
    return patches.amax(dim=(1, 2, 3))


def test_params_from_config():
    from detectron2.config import get_cfg

    from ovavss_d2.config import add_ovavss_config

    cfg = get_cfg()
    add_ovavss_config(cfg)
    params = AudioParams.from_config(cfg)
    assert params == AudioParams()
    assert (params.window_samples, params.hop_samples, params.patch_samples) == (400, 160, 15600)


def test_tone_in_second_3_only_in_patch_3(tmp_path):
    path = tmp_path / "tone.wav"
    write_tone(path, 5.0, sample_rate=16000, frequency=1000.0, active=(3.0, 4.0))
    patches = load_frame_log_mel_patches(path, num_frames=5)
    assert patches.shape == (5, 1, 96, 64) and patches.dtype == torch.float32
    energy = _energy(patches)
    assert energy[3] > SILENCE + 5
    for t in (0, 1, 2, 4):
        assert energy[t] < SILENCE + 0.01, (t, energy)
    # the tone lies in the mel band of 1 kHz (HTK mel 1000 of 180..2840: band 19 of 64), in every
    # STFT frame of patch 3
    band = patches[3, 0].mean(dim=0).argmax()
    assert 17 <= int(band) <= 21
    assert (patches[3, 0, :, band] > SILENCE + 3).all()


def test_44k_stereo_matches_16k_mono(tmp_path):
    sr = 44100
    n = 5 * sr
    t = np.arange(n) / sr
    tone = np.where((t >= 1) & (t < 2), 0.5 * np.sin(2 * np.pi * 880 * t), 0.0)
    stereo = np.stack([tone, np.zeros(n)], axis=1).astype(
        np.float32
    )  # (N, 2), tone in the left channel
    sf.write(tmp_path / "stereo.wav", stereo, sr)
    waveform, rate = read_audio(tmp_path / "stereo.wav")
    assert rate == sr and waveform.shape == (2, n)
    patches = load_frame_log_mel_patches(tmp_path / "stereo.wav", num_frames=5)
    energy = _energy(patches)
    assert int(energy.argmax()) == 1
    assert all(energy[k] < SILENCE + 0.05 for k in (0, 2, 3, 4))
    # mixing to mono halves the amplitude: same as a mono 16 kHz tone of amplitude 0.25
    write_tone(
        tmp_path / "mono.wav", 5.0, sample_rate=16000, frequency=880, active=(1, 2), amplitude=0.25
    )
    reference = load_frame_log_mel_patches(tmp_path / "mono.wav", num_frames=5)
    loud = (
        reference[1] > SILENCE + 1
    )  # bins the tone fills; near-silent bins differ by resampling noise
    assert loud.sum() > 500
    assert torch.allclose(patches[1][loud], reference[1][loud], atol=0.05)


def test_short_audio_is_padded_and_logged(tmp_path, caplog):
    path = tmp_path / "short.wav"
    write_tone(path, 2.5, frequency=500)
    with caplog.at_level(logging.INFO, logger="ovavss_d2.data.audio"):
        patches = load_frame_log_mel_patches(path, num_frames=5)
    assert patches.shape == (5, 1, 96, 64)
    assert (
        "short.wav: audio is 2.500 s, the clip's 5 frames need 5.000 s: zero-padded" in caplog.text
    )
    energy = _energy(patches)
    assert energy[0] > SILENCE + 5 and energy[1] > SILENCE + 5
    assert energy[3] == pytest.approx(SILENCE) and energy[4] == pytest.approx(SILENCE)
    assert torch.isfinite(patches).all()


def test_long_audio_is_truncated_and_logged(tmp_path, caplog):
    path = tmp_path / "long.wav"
    write_tone(path, 12.0, frequency=500, active=(5.0, 12.0))
    with caplog.at_level(logging.INFO, logger="ovavss_d2.data.audio"):
        patches = load_frame_log_mel_patches(path, num_frames=5)
    assert "long.wav: audio is 12.000 s, the clip's 5 frames need 5.000 s: truncated" in caplog.text
    assert patches.shape == (5, 1, 96, 64)
    assert (_energy(patches) < SILENCE + 0.01).all()  # the sound after 5 s is cut


def test_in_memory_waveform_and_arbitrary_starts():
    sr = 22050
    t = np.arange(3 * sr) / sr
    wav = np.where((t >= 1.5) & (t < 2.6), np.sin(2 * np.pi * 600 * t), 0).astype(np.float32)
    patches = log_mel_patches(wav, sr, [0.0, 1.5, 2.9, -1.0])
    assert patches.shape == (4, 1, 96, 64)
    energy = _energy(patches)
    assert energy[1] > SILENCE + 5
    assert (
        energy[0] < SILENCE + 0.05
        and energy[2] < SILENCE + 0.05
        and energy[3] == pytest.approx(SILENCE)
    )
    # int16 samples and torch tensors are accepted; frame_indices selects patches
    as_int = torch.from_numpy((wav * 32767).astype(np.int16))
    sub = frame_log_mel_patches(as_int, sr, num_frames=3, frame_indices=[2, 2])
    assert sub.shape == (2, 1, 96, 64) and torch.equal(sub[0], sub[1])


def test_silence_is_finite():
    patches = frame_log_mel_patches(np.zeros((2, 80000), dtype=np.float32), 16000, num_frames=5)
    assert torch.isfinite(patches).all()
    assert torch.allclose(patches, torch.full_like(patches, SILENCE))


def test_bad_waveforms():
    with pytest.raises(ValueError, match="clip.wav: audio holds 1 NaN or infinite samples"):
        prepare_waveform(np.array([0.0, np.nan, 0.0]), 16000, AudioParams(), source="clip.wav")
    with pytest.raises(ValueError, match="audio holds 1 NaN or infinite samples"):
        log_mel_patches(np.array([0.0, np.inf]), 16000, [0.0])
    with pytest.raises(ValueError, match="holds no samples"):
        prepare_waveform(np.zeros(0), 16000, AudioParams())
    with pytest.raises(ValueError, match=r"more channels than samples; pass it channels-first"):
        prepare_waveform(np.zeros((1000, 2)), 16000, AudioParams())
    with pytest.raises(ValueError, match="sample rate must be a positive integer"):
        prepare_waveform(np.zeros(100), 0, AudioParams())
    with pytest.raises(ValueError, match=r"frame indices \[5\] outside a clip of 5 frames"):
        frame_log_mel_patches(np.zeros(100), 16000, 5, frame_indices=[5])


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"audio file not found: .*missing\.wav"):
        read_audio(tmp_path / "missing.wav")
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF0000WAVEjunkjunk")
    with pytest.raises(ValueError, match=r"corrupt\.wav: cannot read audio"):
        read_audio(tmp_path / "corrupt.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.wav: cannot read audio"):
        read_audio(tmp_path / "empty.wav")
    sf.write(tmp_path / "nosamples.wav", np.zeros((0, 1), dtype=np.float32), 16000)
    with pytest.raises(ValueError, match=r"nosamples\.wav: audio file holds no samples"):
        read_audio(tmp_path / "nosamples.wav")
    sf.write(
        tmp_path / "nan.wav", np.array([[0.0], [np.nan]], dtype=np.float32), 16000, subtype="FLOAT"
    )
    with pytest.raises(ValueError, match=r"nan\.wav: audio holds 1 NaN"):
        read_audio(tmp_path / "nan.wav")


@pytest.mark.parametrize("fmt", ["flac", "ogg"])
def test_flac_and_ogg(tmp_path, fmt):
    sr = 16000
    t = np.arange(2 * sr) / sr
    sf.write(tmp_path / f"a.{fmt}", (0.4 * np.sin(2 * np.pi * 700 * t)).astype(np.float32), sr)
    patches = load_frame_log_mel_patches(tmp_path / f"a.{fmt}", num_frames=2)
    assert patches.shape == (2, 1, 96, 64) and (_energy(patches) > SILENCE + 5).all()


# -- from test_audio_edges.py: Audio front-end edges: file reading, integer waveforms, config
# keys, clip-length fitting.


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


# -- from test_audio_reference.py: The log-mel front-end against a frame-by-frame NumPy
# computation of VGGish's framing.
#
# VGGish cuts STFT frame ``k`` of a patch starting at sample ``s`` from ``[s + k*hop, s + k*hop +
# win)``, multiplies it by a periodic Hann window, zero-pads it at its end to the FFT length and
# takes the magnitude spectrum. The mel filters are torchaudio's in both (the module docstring
# says why), so what is compared here is the framing, window, padding, magnitude and log.


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


def test_audio_length_logged_once_per_clip(caplog, monkeypatch):
    monkeypatch.setattr(audio_module, "_LENGTH_LOGGED", set())
    monkeypatch.setattr(audio_module, "_LENGTH_MISMATCHES", {})
    params = AudioParams()
    short = np.zeros(params.sample_rate * 2, dtype=np.float32)  # 2 s for a 5-frame clip
    audio_module.logger.addHandler(caplog.handler)  # "ovavss_d2" may not propagate (setup_logger)
    try:
        with caplog.at_level(logging.DEBUG, logger="ovavss_d2.data.audio"):
            for _ in range(4):  # the clip loaded 4 times (epochs)
                frame_log_mel_patches(short, params.sample_rate, 5, params, source="clip_a.wav")
            frame_log_mel_patches(short, params.sample_rate, 5, params, source="clip_b.wav")
    finally:
        audio_module.logger.removeHandler(caplog.handler)
    records = {id(r): r for r in caplog.records}.values()  # seen by both handlers when propagated
    infos = [r for r in records if r.levelno == logging.INFO and "padded" in r.getMessage()]
    assert [r.args[0] for r in infos] == ["clip_a.wav", "clip_b.wav"], [
        r.getMessage() for r in infos
    ]
    assert audio_length_summary() == (
        "2 clips had audio of another length than their frames (2 zero-padded, 0 truncated)"
    )
    assert audio_length_summary() is None  # counted per evaluation / training
