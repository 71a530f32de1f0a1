"""Audio front-end: alignment of patches to frames, input formats, padding, bad audio."""

import logging

import numpy as np
import pytest
import soundfile as sf
import torch

from ovavss_d2.data.audio import (
    AudioParams,
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
