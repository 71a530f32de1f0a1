"""Config -> open-vocabulary components (``MODEL.TEXT_ENCODER.*``, ``MODEL.OPEN_VOCAB.*``)."""

import logging
from typing import Optional

from detectron2.config import CfgNode

from .clip_visual import CLIPVisualClassifier
from .templates import get_templates
from .text_classifier import TextClassifierCache

logger = logging.getLogger(__name__)


def build_text_classifier_cache(cfg: CfgNode, text_encoder) -> TextClassifierCache:
    """A :class:`TextClassifierCache` with the configured templates and chunk size."""
    return TextClassifierCache(
        text_encoder,
        get_templates(cfg.MODEL.TEXT_ENCODER.TEMPLATES),
        chunk_size=cfg.MODEL.TEXT_ENCODER.CHUNK_SIZE,
    )


def build_clip_visual_classifier(cfg: CfgNode, text_encoder) -> Optional[CLIPVisualClassifier]:
    """The configured :class:`CLIPVisualClassifier`, or None when ``CLIP_VISUAL_MODE`` is "none" or
    the text encoder has no CLIP image tower (MiniLM)."""
    ov = cfg.MODEL.OPEN_VOCAB
    mode = ov.CLIP_VISUAL_MODE
    if mode == "none":
        return None
    clip_model = getattr(text_encoder, "clip_model", None)
    if clip_model is None:
        logger.warning(
            "MODEL.OPEN_VOCAB.CLIP_VISUAL_MODE=%s needs a CLIP text encoder; %s has no image "
            "tower: "
            "classifying with the learned head only",
            mode,
            type(text_encoder).__name__,
        )
        return None
    return CLIPVisualClassifier(
        clip_model,
        mode,
        crop_size=ov.CROP_SIZE,
        crop_margin=ov.CROP_MARGIN,
        mask_threshold=ov.MASK_THRESHOLD,
        logit_scale=ov.LOGIT_SCALE,
        image_format=cfg.INPUT.FORMAT,
    )
