"""Fixtures of the class-source tests: stand-in model parts, a tiny random CLIP, a clip's
queries."""

import pytest
import torch
from detectron2.config import get_cfg

from ovavss_d2 import add_ovavss_config


@pytest.fixture
def cfg():
    c = get_cfg()
    add_ovavss_config(c)
    c.MODEL.DEVICE = "cpu"
    return c


@pytest.fixture(scope="session")
def tiny_clip_vit(tmp_path_factory) -> str:
    """Path of a randomly initialised ViT CLIP (embed 32, 32 px images) saved as a state dict."""
    from clip.model import CLIP

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("clip") / "tiny_vit.pt"
    torch.save(CLIP(32, 32, 2, 64, 16, 77, 49408, 64, 1, 1).state_dict(), path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_clip_rn(tmp_path_factory) -> str:
    """Path of a randomly initialised ModifiedResNet CLIP (width 8, 64 px images)."""
    from clip.model import CLIP

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("clip") / "tiny_rn.pt"
    torch.save(CLIP(32, 64, (1, 1, 1, 1), 8, None, 77, 49408, 64, 1, 1).state_dict(), path)
    return str(path)
