"""What a class-evidence source sees and says, and the registry that builds sources from a config.

Shape letters: Q queries, T frames, K classes of the vocabulary, E text-embedding size, D query
embedding size, C audio-embedding size, H x W the resized (unpadded) frame size.

A class-evidence source names the queries of one clip: from the decoder outputs (query embeddings,
masks), the clip's frames and audio embeddings and the vocabulary's text embeddings it gives
per-query class probabilities ``(Q, K)`` (or per frame ``(Q, T, K)``) and a flag per class saying
which classes it can speak about at all. The meta-architecture asks each configured source and
combines them (:func:`ovavss_d2.modeling.class_sources.ensemble.combine_evidence`); it does not know
what a source is.

Adding a source: one file with a :class:`ClassSource` subclass registered in
``CLASS_SOURCE_REGISTRY``, its ``__init__`` ``@configurable`` with a ``from_config(cfg, context)``
that reads its own node ``MODEL.CLASS_SOURCES.<NAME>``, plus its name in
``MODEL.CLASS_SOURCES.NAMES`` (docs/DESIGN.md).
"""

from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
from detectron2.utils.registry import Registry

__all__ = [
    "CLASS_SOURCE_REGISTRY",
    "ClassSource",
    "ClipQueries",
    "ClassEvidence",
    "register_class_source",
]

CLASS_SOURCE_REGISTRY = Registry("CLASS_SOURCE")
CLASS_SOURCE_REGISTRY.__doc__ = """
Class-evidence sources, built as ``cls(cfg, context)`` (``@configurable``), where ``context`` is a
dict of the model's already-built parts (``text_encoder``, ``audio_encoder``, ``text_classifier``,
``embedding_classifier``). Each source maps a :class:`ClipQueries` to a :class:`ClassEvidence`.
"""


def register_class_source(name: str) -> Callable[[type], type]:
    """Class decorator: register a :class:`ClassSource` under ``name`` (its config name)."""

    def deco(cls: type) -> type:
        cls.name = name
        CLASS_SOURCE_REGISTRY._do_register(name, cls)
        return cls

    return deco


@dataclass
class ClipQueries:
    """Everything a source may read about one clip's queries (inference only)."""

    pred_embeds: torch.Tensor  # (Q, D) query embeddings of the decoder's last layer
    pred_objectness: torch.Tensor  # (Q, 2) sounding-object logits (index 0: sounding object)
    # (Q, T, H, W) mask probabilities at the resized frame size; a callable so that sources that
    # need no masks cost nothing (computed once, on first use, then cached by the caller).
    mask_probs: Callable[[], torch.Tensor]
    frames: torch.Tensor  # uint8 (T, 3, H, W) resized frames in INPUT.FORMAT channel order
    audio_embeds: torch.Tensor  # (T, C) one embedding per frame's second of audio
    vocabulary: Sequence[Tuple[str, ...]]  # K synonym tuples; [k][0] is the display name
    class_embeds: torch.Tensor  # (K, E) text embeddings of the vocabulary (learned path's prompts)
    is_base: torch.Tensor  # bool (K,): True for classes of the training vocabulary
    extras: Dict[str, torch.Tensor] = field(default_factory=dict)  # other decoder outputs


@dataclass
class ClassEvidence:
    """What one source says about a clip's queries."""

    probs: torch.Tensor  # (Q, K) or (Q, T, K) class probabilities (each row sums to 1 over K)
    # bool (K,): the classes this source can speak about. Elsewhere its factor in the ensemble is
    # the uniform 1 / K (raised to its weight), whatever ``probs`` holds there; None: all K.
    speaks: Optional[torch.Tensor] = None
    # (Q,) probability that the query is no object at all, for sources that model it (the learned
    # classifier's background embedding); None for the others.
    p_background: Optional[torch.Tensor] = None


class ClassSource:
    """A class-evidence source (see the module docstring). Inference only: no trainable weights of
    its own live here; a source that reads a trained module (the learned classifier) is handed it,
    and the module stays where it is checkpointed."""

    #: registry name, also the key of the source in logs and in ``MODEL.CLASS_SOURCES.NAMES``
    name: str = ""

    @classmethod
    def from_config(cls, cfg, context: Dict[str, object]) -> Dict[str, object]:
        """``__init__`` arguments from the source's config node and the model's built parts."""
        raise NotImplementedError

    def __call__(self, clip: ClipQueries) -> ClassEvidence:
        """The source's class evidence for the queries of one clip."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
