"""Fixtures shared by the modeling tests: a CPU config, tiny random CLIPs."""

import pytest
import torch
from detectron2.config import get_cfg

from ovavss_d2 import add_ovavss_config


@pytest.fixture
def cfg():
    """The default OV-AVSS config on the CPU."""
    c = get_cfg()
    add_ovavss_config(c)
    c.MODEL.DEVICE = "cpu"
    return c


def _save_tiny_clip(path, vit: bool) -> str:
    from clip.model import CLIP

    torch.manual_seed(0)
    if vit:  # embed 32, 32 px images, 2 layers of width 64, patch 16 (2x2 grid)
        model = CLIP(32, 32, 2, 64, 16, 77, 49408, 64, 1, 1)
    else:  # ModifiedResNet (1, 1, 1, 1) of width 8 on 64 px images
        model = CLIP(32, 64, (1, 1, 1, 1), 8, None, 77, 49408, 64, 1, 1)
    torch.save(model.state_dict(), path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_clip_vit(tmp_path_factory) -> str:
    """Path of a randomly initialised ViT CLIP saved as a state dict (loads with clip.load)."""
    return _save_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny_vit.pt", vit=True)


@pytest.fixture(scope="session")
def tiny_clip_rn(tmp_path_factory) -> str:
    """Path of a randomly initialised ModifiedResNet CLIP saved as a state dict."""
    return _save_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny_rn.pt", vit=False)
