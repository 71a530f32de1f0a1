"""The crop head and the separate crop CNNs."""

import pytest
import torch

from ovavss_d2.baselines.tpavi import CropHead, build_crop_encoder


def test_crop_head_layers_follow_the_losses():
    head = CropHead(32, 16, num_classes=5, audio_dim=8)
    out = head(torch.randn(3, 32))
    assert out["embeddings"].shape == (3, 16) and (out["embeddings"] >= 0).all()
    assert out["logits"].shape == (3, 5) and out["audio_space"].shape == (3, 8)
    bare = CropHead(32, 16)
    assert bare.classifier is None and bare.to_audio is None
    assert bare(torch.randn(1, 32))["logits"] is None


def test_efficientnet_crop_encoder():
    enc = build_crop_encoder("efficientnet-lite0", "none", [127.0] * 3, [128.0] * 3)
    assert enc.feature_dim == 1280
    assert enc(torch.rand(2, 3, 64, 64) * 255).shape == (2, 1280)
    with pytest.raises(ValueError, match="FEATURE_DIM"):
        build_crop_encoder("efficientnet-lite0", "none", [127.0] * 3, [128.0] * 3, feature_dim=2048)


def test_resnet50_crop_encoder(tmp_path, caplog):
    enc = build_crop_encoder(
        "torchvision-resnet50", "", [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    )
    assert "randomly initialised" in caplog.text
    assert enc.feature_dim == 2048
    assert enc(torch.rand(1, 3, 64, 64) * 255).shape == (1, 2048)
    bad = tmp_path / "bad.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not a torchvision ResNet-50"):
        build_crop_encoder("torchvision-resnet50", str(bad), [0.0] * 3, [1.0] * 3)
    partial = tmp_path / "partial.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, partial)
    with pytest.raises(ValueError, match="missing"):
        build_crop_encoder("torchvision-resnet50", str(partial), [0.0] * 3, [1.0] * 3)


def test_unknown_crop_cnn():
    with pytest.raises(ValueError, match="CROP_LOSS.CNN"):
        build_crop_encoder("vgg16", "", [0.0] * 3, [1.0] * 3)
