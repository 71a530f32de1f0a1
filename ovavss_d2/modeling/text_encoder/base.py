"""Registry, base class and builder of the text encoders.

Shapes: ``N`` texts, ``E`` embedding size.
"""

import logging
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from detectron2.config import CfgNode
from detectron2.utils.registry import Registry

TEXT_ENCODER_REGISTRY = Registry("TEXT_ENCODER")
TEXT_ENCODER_REGISTRY.__doc__ = """
Registry for text encoders, which map a list of N strings to L2-normalised embeddings (N, E).

The registered object is called with ``obj(cfg)`` and must provide ``encode(texts) -> (N, E)``,
``dim: int`` (E) and ``clip_model`` (the CLIP model whose image tower shares the embedding space,
or None).
"""

logger = logging.getLogger(__name__)


class TextEncoder:
    """Base class of the text encoders: frozen, inference only.

    Deliberately not an ``nn.Module``: a meta-architecture that keeps one as an attribute does not
    put hundreds of MB of frozen weights in every checkpoint nor in the optimizer, and moves it
    explicitly with :meth:`to`. Text embeddings are computed once per vocabulary
    (``text_encoder.TextClassifierCache``), so this is never on the training hot path.
    """

    dim: int = 0
    # CLIP model whose image tower matches this embedding space (None: text only).
    clip_model: Optional[torch.nn.Module] = None

    def __init__(self, device: str = "cpu"):
        self.device = torch.device(device)

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed texts.

        Args:
            texts: N strings (a list, not one string).

        Returns:
            float32 ``(N, E)``, L2-normalised rows, on ``device``.
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of strings, not one string")
        texts = list(texts)
        if not texts:
            return torch.zeros(0, self.dim, device=self.device)
        return F.normalize(self._embed(texts).float(), dim=-1)

    def _embed(self, texts: List[str]) -> torch.Tensor:
        """Unnormalised embeddings ``(N, E)`` of N >= 1 texts, on ``device`` (subclasses)."""
        raise NotImplementedError

    def to(self, device) -> "TextEncoder":
        raise NotImplementedError

    @property
    def has_image_tower(self) -> bool:
        """Whether ``clip_model`` gives an image tower in this embedding space."""
        return self.clip_model is not None


def resolve_device(cfg: CfgNode) -> str:
    """``MODEL.TEXT_ENCODER.DEVICE``, else ``MODEL.DEVICE``, falling back to CPU without CUDA."""
    device = cfg.MODEL.TEXT_ENCODER.DEVICE or cfg.MODEL.DEVICE
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        return "cpu"
    return device


def build_text_encoder(cfg: CfgNode) -> TextEncoder:
    """Build the text encoder named by ``cfg.MODEL.TEXT_ENCODER.NAME`` and check its interface."""
    name = cfg.MODEL.TEXT_ENCODER.NAME
    encoder = TEXT_ENCODER_REGISTRY.get(name)(cfg)
    dim = getattr(encoder, "dim", None)
    if not callable(getattr(encoder, "encode", None)):
        raise TypeError(f"Text encoder {name} has no encode(texts) method")
    if not isinstance(dim, int) or dim <= 0:
        raise TypeError(f"Text encoder {name} must define a positive int `dim`, got {dim!r}")
    logger.info(
        "Text encoder %s: dim=%d, image tower=%s", name, dim, encoder.clip_model is not None
    )
    return encoder
