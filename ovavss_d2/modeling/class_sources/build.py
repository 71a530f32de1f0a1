"""Config -> the active class sources and their ensemble weights (``MODEL.CLASS_SOURCES.*``).

With ``MODEL.CLASS_SOURCES.NAMES`` set, the named sources are built in that order with the aligned
``BASE_WEIGHTS`` / ``NOVEL_WEIGHTS``. Left empty (the default) the sources and weights follow the
keys of earlier versions (:func:`legacy_sources`): ``learned`` when ``MODEL.OVAVSS.CLASS_WEIGHT >
0``, ``clip_visual`` when ``MODEL.OPEN_VOCAB.CLIP_VISUAL_MODE`` is not "none" and the text encoder
has a CLIP image tower, ``audio_tags`` when ``MODEL.OVAVSS.AUDIO_LABELS.ENABLED``; with ``a, b =
ENSEMBLE_ALPHA, ENSEMBLE_BETA`` and ``a2, b2 = AUDIO_LABELS.ALPHA, BETA`` the weights are the flat
product of the old nested ensemble: learned ``((1-a)(1-a2), (1-b)(1-b2))``, clip_visual ``(a(1-a2),
b(1-b2))``, audio_tags ``(a2, b2)`` (learned or CLIP alone: ``(1-a2, 1-b2)``). The flat product
equals the nested one exactly only when ``a2 == b2`` (see ensemble.py).
"""

import logging
from typing import Dict, List, Tuple

from detectron2.config import CfgNode

from .base import CLASS_SOURCE_REGISTRY, ClassSource
from .ensemble import SourceWeights

__all__ = ["build_class_sources", "legacy_sources", "registered_sources"]

logger = logging.getLogger(__name__)


def registered_sources() -> List[str]:
    """Names of every registered class source, sorted."""
    return sorted(name for name, _ in CLASS_SOURCE_REGISTRY)


def legacy_sources(cfg: CfgNode, context: Dict[str, object]) -> Dict[str, SourceWeights]:
    """Sources and weights that the keys of earlier versions select (module docstring)."""
    ov, vocab = cfg.MODEL.OVAVSS, cfg.MODEL.OPEN_VOCAB
    learned = ov.CLASS_WEIGHT > 0
    clip = vocab.CLIP_VISUAL_MODE != "none"
    if clip and getattr(context.get("text_encoder"), "clip_model", None) is None:
        logger.warning(
            "MODEL.OPEN_VOCAB.CLIP_VISUAL_MODE=%s needs a CLIP text encoder; %s has no image "
            "tower: no clip_visual class source",
            vocab.CLIP_VISUAL_MODE,
            cfg.MODEL.TEXT_ENCODER.NAME,
        )
        clip = False
    if not (learned or clip):
        return {}  # as before: the sound tags alone do not make a model
    a, b = (vocab.ENSEMBLE_ALPHA, vocab.ENSEMBLE_BETA) if learned and clip else (0.0, 0.0)
    if clip and not learned:
        a, b = 1.0, 1.0
    a2, b2 = (ov.AUDIO_LABELS.ALPHA, ov.AUDIO_LABELS.BETA) if ov.AUDIO_LABELS.ENABLED else (0, 0)
    weights: Dict[str, SourceWeights] = {}
    if learned:
        weights["learned"] = SourceWeights((1 - a) * (1 - a2), (1 - b) * (1 - b2))
    if clip:
        weights["clip_visual"] = SourceWeights(a * (1 - a2), b * (1 - b2))
    if ov.AUDIO_LABELS.ENABLED:
        weights["audio_tags"] = SourceWeights(a2, b2)
    return weights


def _configured_sources(cfg: CfgNode) -> Dict[str, SourceWeights]:
    node = cfg.MODEL.CLASS_SOURCES
    names, base, novel = list(node.NAMES), list(node.BASE_WEIGHTS), list(node.NOVEL_WEIGHTS)
    if len(base) != len(names) or len(novel) != len(names):
        raise ValueError(
            f"MODEL.CLASS_SOURCES: NAMES {names} needs one BASE_WEIGHTS and one NOVEL_WEIGHTS "
            f"entry per source, got {base} and {novel}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"MODEL.CLASS_SOURCES.NAMES lists a source twice: {names}")
    unknown = [n for n in names if n not in CLASS_SOURCE_REGISTRY]
    if unknown:
        raise ValueError(
            f"MODEL.CLASS_SOURCES.NAMES: unknown class sources {unknown}; registered: "
            f"{registered_sources()}"
        )
    try:
        return {n: SourceWeights(w, v) for n, w, v in zip(names, base, novel)}
    except ValueError as e:
        raise ValueError(f"MODEL.CLASS_SOURCES: {e}") from None


def build_class_sources(
    cfg: CfgNode, context: Dict[str, object]
) -> Tuple[Dict[str, ClassSource], Dict[str, SourceWeights]]:
    """Build the active class sources.

    Args:
        context: the model's built parts a source may use (``text_encoder``, ``audio_encoder``,
            ``text_classifier``, ``embedding_classifier``).
    Returns:
        ``(sources, weights)``, both keyed by source name in ensemble order.
    """
    configured = bool(cfg.MODEL.CLASS_SOURCES.NAMES)
    weights = _configured_sources(cfg) if configured else legacy_sources(cfg, context)
    if not weights:
        raise ValueError(
            "OVAVSS needs a class source: the learned embedding classifier (MODEL.OVAVSS."
            "CLASS_WEIGHT > 0), a CLIP image tower (MODEL.OPEN_VOCAB.CLIP_VISUAL_MODE) or "
            f"MODEL.CLASS_SOURCES.NAMES from {registered_sources()}"
        )
    sources = {name: CLASS_SOURCE_REGISTRY.get(name).from_config(cfg, context) for name in weights}
    logger.info(
        "Class sources (base, novel weights): %s",
        ", ".join(f"{n} ({w.base:g}, {w.novel:g})" for n, w in weights.items()),
    )
    return sources, weights
