"""build_class_sources: NAMES and weights from MODEL.CLASS_SOURCES."""

import pytest
from source_helpers import Tagger, TextEncoder
from torch import nn

from ovavss_d2.modeling.class_sources import (
    AudioTagsSource,
    LearnedSource,
    SourceWeights,
    build_class_sources,
    registered_sources,
)


def _context(text_encoder=None):
    return {
        "text_encoder": text_encoder or TextEncoder(),
        "audio_encoder": Tagger(),
        "text_classifier": None,
        "embedding_classifier": nn.Linear(2, 2),
    }


def test_registered():
    assert {"learned", "clip_visual", "audio_tags", "image_tags"} <= set(registered_sources())


def test_defaults_are_the_reference_ensemble(cfg):
    node = cfg.MODEL.CLASS_SOURCES
    assert node.NAMES == ["learned", "clip_visual"]
    assert (node.BASE_WEIGHTS, node.NOVEL_WEIGHTS) == ([0.6, 0.4], [0.2, 0.8])
    with pytest.raises(ValueError, match="CLIP image tower"):  # MiniLM-like: no image tower
        build_class_sources(cfg, _context())


def test_built_sources_are_configurable(cfg):
    cfg.MODEL.CLASS_SOURCES.NAMES = ["learned", "audio_tags"]
    cfg.MODEL.CLASS_SOURCES.BASE_WEIGHTS = [0.8, 0.2]
    cfg.MODEL.CLASS_SOURCES.NOVEL_WEIGHTS = [0.5, 0.5]
    sources, weights = build_class_sources(cfg, _context())
    assert isinstance(sources["learned"], LearnedSource)
    assert isinstance(sources["audio_tags"], AudioTagsSource)
    assert weights == {"learned": SourceWeights(0.8, 0.5), "audio_tags": SourceWeights(0.2, 0.5)}
    cfg.MODEL.CLASS_SOURCES.NAMES, cfg.MODEL.CLASS_SOURCES.BASE_WEIGHTS = [], []
    cfg.MODEL.CLASS_SOURCES.NOVEL_WEIGHTS = []
    with pytest.raises(ValueError, match="NAMES is empty"):
        build_class_sources(cfg, _context())


def test_names_with_weights(cfg):
    cfg.MODEL.CLASS_SOURCES.NAMES = ["audio_tags", "learned"]
    cfg.MODEL.CLASS_SOURCES.BASE_WEIGHTS = [0.3, 1.0]
    cfg.MODEL.CLASS_SOURCES.NOVEL_WEIGHTS = [0.9, 0.25]
    sources, weights = build_class_sources(cfg, _context())
    assert list(sources) == ["audio_tags", "learned"]
    assert weights == {"audio_tags": SourceWeights(0.3, 0.9), "learned": SourceWeights(1.0, 0.25)}


def test_bad_names_and_weights(cfg):
    node = cfg.MODEL.CLASS_SOURCES
    node.NAMES, node.BASE_WEIGHTS, node.NOVEL_WEIGHTS = ["learned", "sonar"], [1, 1], [1, 1]
    with pytest.raises(ValueError) as info:
        build_class_sources(cfg, _context())
    text = str(info.value)
    assert "unknown class sources ['sonar']" in text
    assert all(repr(name) in text for name in ("learned", "clip_visual", "audio_tags"))
    node.NAMES, node.BASE_WEIGHTS = ["learned"], [1.0, 0.5]
    with pytest.raises(ValueError, match="one BASE_WEIGHTS and one NOVEL_WEIGHTS entry per"):
        build_class_sources(cfg, _context())
    node.NAMES, node.BASE_WEIGHTS, node.NOVEL_WEIGHTS = ["learned"], [-1.0], [1.0]
    with pytest.raises(ValueError, match="MODEL.CLASS_SOURCES: source weights must be >= 0"):
        build_class_sources(cfg, _context())
    node.NAMES, node.BASE_WEIGHTS, node.NOVEL_WEIGHTS = ["learned"] * 2, [1.0] * 2, [1.0] * 2
    with pytest.raises(ValueError, match="lists a source twice"):
        build_class_sources(cfg, _context())
