"""build_audio_encoder (audio_encoder/base.py): the interface an encoder must have."""

import pytest
import torch

from ovavss_d2.modeling.audio_encoder import AUDIO_ENCODER_REGISTRY, build_audio_encoder


def test_build_checks_the_interface(cfg):
    @AUDIO_ENCODER_REGISTRY.register()
    class _NoOutputDimEncoder(torch.nn.Module):
        def __init__(self, cfg):
            super().__init__()

    cfg.MODEL.AUDIO_ENCODER.NAME = "_NoOutputDimEncoder"
    with pytest.raises(TypeError, match="output_dim"):
        build_audio_encoder(cfg)
