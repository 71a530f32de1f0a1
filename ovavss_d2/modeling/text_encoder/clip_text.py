"""CLIP text tower as a text encoder (``MODEL.TEXT_ENCODER.NAME: CLIPTextEncoder``)."""

from typing import List

import torch

from .base import TEXT_ENCODER_REGISTRY, TextEncoder, resolve_device
from .clip_loader import load_clip


@TEXT_ENCODER_REGISTRY.register()
class CLIPTextEncoder(TextEncoder):
    """CLIP's text transformer + projection; embeddings live in CLIP's joint image-text space."""

    def __init__(self, cfg=None, *, model: str = "", device: str = "cpu", download_root: str = ""):
        """
        Args:
            cfg: a config (reads ``MODEL.TEXT_ENCODER.*``); or pass the keywords instead.
            model: ``clip.available_models()`` name (downloads) or a local checkpoint path.
            device: torch device string.
            download_root: download folder for named models ("" -> ``~/.cache/clip``).
        """
        if cfg is not None:
            model = cfg.MODEL.TEXT_ENCODER.CLIP_MODEL
            device = resolve_device(cfg)
            download_root = cfg.MODEL.TEXT_ENCODER.CLIP_DOWNLOAD_ROOT
        if not model:
            raise ValueError("CLIPTextEncoder needs a CLIP model name or checkpoint path")
        super().__init__(device)
        self.model_name = model
        self.download_root = download_root
        self.clip_model = load_clip(model, self.device, download_root)
        self.dim = int(self.clip_model.text_projection.shape[1])

    def to(self, device) -> "CLIPTextEncoder":
        device = torch.device(device)
        if device != self.device:
            self.device = device
            self.clip_model = load_clip(self.model_name, device, self.download_root)
        return self

    def _embed(self, texts: List[str]) -> torch.Tensor:
        """Projected end-of-text features ``(N, E)``; prompts past the context are cut."""
        import clip

        ctx = self.clip_model.context_length
        tokens = clip.tokenize(texts, context_length=ctx, truncate=True).to(self.device)
        return self.clip_model.encode_text(tokens)
