"""build_class_sources: NAMES and weights from MODEL.CLASS_SOURCES, or from the legacy keys."""

import pytest
from source_helpers import Tagger, TextEncoder
from torch import nn

from ovavss_d2.modeling.class_sources import (
    AudioTagsSource,
    LearnedSource,
    SourceWeights,
    build_class_sources,
    legacy_sources,
    registered_sources,
)


class _ClipTextEncoder(TextEncoder):
    clip_model = object()  # an image tower is there (not used: only the weights are derived)


def _context(text_encoder=None):
    return {
        "text_encoder": text_encoder or TextEncoder(),
        "audio_encoder": Tagger(),
        "text_classifier": None,
        "embedding_classifier": nn.Linear(2, 2),
    }


def _legacy(cfg, a=0.4, b=0.8, a2=0.2, b2=0.5, audio=True):
    cfg.MODEL.OPEN_VOCAB.ENSEMBLE_ALPHA, cfg.MODEL.OPEN_VOCAB.ENSEMBLE_BETA = a, b
    cfg.MODEL.OVAVSS.AUDIO_LABELS.ALPHA, cfg.MODEL.OVAVSS.AUDIO_LABELS.BETA = a2, b2
    cfg.MODEL.OVAVSS.AUDIO_LABELS.ENABLED = audio
    return cfg


def _close(weights, expected):
    assert list(weights) == list(expected)
    for name, (base, novel) in expected.items():
        assert weights[name] == pytest.approx((base, novel)), name


def test_registered():
    assert {"learned", "clip_visual", "audio_tags"} <= set(registered_sources())


def test_legacy_all_three(cfg):
    # learned (1-a)(1-a2), (1-b)(1-b2); clip a(1-a2), b(1-b2); audio a2, b2
    weights = legacy_sources(_legacy(cfg), _context(_ClipTextEncoder()))
    _close(
        weights,
        {
            "learned": (0.6 * 0.8, 0.2 * 0.5),
            "clip_visual": (0.4 * 0.8, 0.8 * 0.5),
            "audio_tags": (0.2, 0.5),
        },
    )


def test_legacy_without_an_image_tower(cfg):
    """MiniLM (no image tower): CLIP_VISUAL_MODE "crop" (the default) gives no clip_visual; the
    learned classifier alone carries exponent 1 - a2."""
    weights = legacy_sources(_legacy(cfg), _context())
    _close(weights, {"learned": (0.8, 0.5), "audio_tags": (0.2, 0.5)})
    cfg.MODEL.OVAVSS.AUDIO_LABELS.ENABLED = False
    _close(legacy_sources(cfg, _context()), {"learned": (1.0, 1.0)})


def test_legacy_clip_only(cfg):
    cfg.MODEL.OVAVSS.CLASS_WEIGHT = 0.0
    weights = legacy_sources(_legacy(cfg, audio=False), _context(_ClipTextEncoder()))
    _close(weights, {"clip_visual": (1.0, 1.0)})
    cfg.MODEL.OPEN_VOCAB.CLIP_VISUAL_MODE = "none"
    assert legacy_sources(cfg, _context(_ClipTextEncoder())) == {}
    with pytest.raises(ValueError, match="needs a class source"):
        build_class_sources(cfg, _context())


def test_empty_names_build_the_legacy_sources(cfg):
    cfg.MODEL.OVAVSS.TEST.BASE_LOGIT_PENALTY = 0.5
    sources, weights = build_class_sources(_legacy(cfg), _context())
    assert list(sources) == ["learned", "audio_tags"]
    assert isinstance(sources["learned"], LearnedSource)
    assert sources["learned"].base_logit_penalty == 0.5
    assert isinstance(sources["audio_tags"], AudioTagsSource)
    _close(weights, {"learned": (0.8, 0.5), "audio_tags": (0.2, 0.5)})


def test_names_with_weights(cfg):
    cfg.MODEL.CLASS_SOURCES.NAMES = ["audio_tags", "learned"]
    cfg.MODEL.CLASS_SOURCES.BASE_WEIGHTS = [0.3, 1.0]
    cfg.MODEL.CLASS_SOURCES.NOVEL_WEIGHTS = [0.9, 0.25]
    sources, weights = build_class_sources(cfg, _context())  # AUDIO_LABELS.ENABLED is False
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
