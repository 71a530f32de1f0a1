"""Audio encoder VGGish (torchvggish layout): random init, torchvggish checkpoints, freezing."""

import logging

import torch

from ovavss_d2.modeling.audio_encoder import VGGish, build_audio_encoder

TORCHVGGISH_KEYS = sorted(
    [f"features.{i}.{p}" for i in (0, 3, 6, 8, 11, 13) for p in ("weight", "bias")]
    + [f"embeddings.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")]
)


def test_vggish_random_init_warns_and_is_frozen(cfg, caplog, assert_frozen):
    with caplog.at_level(logging.WARNING):
        model = build_audio_encoder(cfg)  # default: VGGish, no weights, frozen
    assert isinstance(model, VGGish) and model.output_dim == 128
    assert "randomly initialised" in caplog.text
    assert_frozen(model)
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
