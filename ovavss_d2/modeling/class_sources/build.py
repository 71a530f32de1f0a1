"""Config -> the active class sources and their ensemble weights (``MODEL.CLASS_SOURCES.*``).

The sources of ``MODEL.CLASS_SOURCES.NAMES`` are built in that order (``cls(cfg, context)``, each
reading its own node ``MODEL.CLASS_SOURCES.<NAME>``), with the aligned ``BASE_WEIGHTS`` /
``NOVEL_WEIGHTS`` as their ``(base, novel)`` exponents in the ensemble (ensemble.py).
"""

import logging
from typing import Dict, List, Tuple

from detectron2.config import CfgNode

from .base import CLASS_SOURCE_REGISTRY, ClassSource
from .ensemble import SourceWeights

__all__ = ["build_class_sources", "configured_weights", "registered_sources"]

logger = logging.getLogger(__name__)


def registered_sources() -> List[str]:
    """Names of every registered class source, sorted."""
    return sorted(name for name, _ in CLASS_SOURCE_REGISTRY)


def configured_weights(cfg: CfgNode) -> Dict[str, SourceWeights]:
    """``{name: (base, novel)}`` of ``MODEL.CLASS_SOURCES.{NAMES, BASE_WEIGHTS, NOVEL_WEIGHTS}``,
    in ensemble order (checked: aligned lists, registered names, no repeats, weights >= 0)."""
    node = cfg.MODEL.CLASS_SOURCES
    names, base, novel = list(node.NAMES), list(node.BASE_WEIGHTS), list(node.NOVEL_WEIGHTS)
    if not names:
        raise ValueError(
            "MODEL.CLASS_SOURCES.NAMES is empty: OVAVSS needs a class source, from "
            f"{registered_sources()} (docs/DESIGN.md, 'Class-evidence sources')"
        )
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
            ``text_classifier``, ``embedding_classifier``); the sources also get
            ``class_sources``, the dict of sources being built (filled in NAMES order).
    Returns:
        ``(sources, weights)``, both keyed by source name in ensemble order.
    """
    weights = configured_weights(cfg)
    sources: Dict[str, ClassSource] = {}
    # a source may ask another at call time (the sound assignment asks the visual sources)
    context = dict(context, class_sources=sources)
    for name in weights:
        sources[name] = CLASS_SOURCE_REGISTRY.get(name)(cfg, context)
    logger.info(
        "Class sources (base, novel weights): %s",
        ", ".join(f"{n} ({w.base:g}, {w.novel:g})" for n, w in weights.items()),
    )
    return sources, weights
