"""The ``clip_visual`` class source: CLIP's image tower on each query's masked frames.

Shape letters: Q queries, T frames, K classes, H x W the resized frame size.

Wraps :class:`~ovavss_d2.modeling.open_vocab.CLIPVisualClassifier` ("crop": masked square crops,
"mask_pool": mask-pooled dense CLIP features); its logits, averaged over the frames where a query
is present, are turned into a softmax over the vocabulary. Needs a CLIP text encoder (the image
tower comes with it) and ``MODEL.OPEN_VOCAB.CLIP_VISUAL_MODE`` other than "none".
"""

from typing import Dict

from ..open_vocab import CLIPVisualClassifier, build_clip_visual_classifier
from .base import ClassEvidence, ClassSource, ClipQueries, register_class_source

__all__ = ["ClipVisualSource"]


@register_class_source("clip_visual")
class ClipVisualSource(ClassSource):
    """CLIP's classification of the query masks (``MODEL.OPEN_VOCAB.*`` keys)."""

    def __init__(self, classifier: CLIPVisualClassifier):
        self.classifier = classifier

    @classmethod
    def from_config(cls, cfg, context: Dict[str, object]) -> "ClipVisualSource":
        classifier = build_clip_visual_classifier(cfg, context["text_encoder"])
        if classifier is None:
            raise ValueError(
                "class source 'clip_visual' needs MODEL.OPEN_VOCAB.CLIP_VISUAL_MODE 'crop' or "
                f"'mask_pool' (got {cfg.MODEL.OPEN_VOCAB.CLIP_VISUAL_MODE!r}) and a text encoder "
                f"with a CLIP image tower (MODEL.TEXT_ENCODER.NAME {cfg.MODEL.TEXT_ENCODER.NAME})"
            )
        return cls(classifier)

    def __call__(self, clip: ClipQueries) -> ClassEvidence:
        logits, _ = self.classifier(clip.frames, clip.mask_probs(), clip.class_embeds)  # (Q, K)
        return ClassEvidence(probs=logits.to(clip.pred_embeds.device).softmax(-1))
