"""A frozen ImageNet-1k classifier that ships offline (EfficientNet-Lite with its own head), its
1000 category names and its input normalisation (masked crops: ``ovavss_d2.modeling.crops``).

Shape letters: N images, M crops, Q queries, T frames, H x W frame size, S crop size,
F feature channels (1280), J = 1000 ImageNet categories.

The network is the backbone adapter
:class:`~ovavss_d2.modeling.backbone.efficientnet.D2EfficientNetLite`
(the same loading code and packaged weights as the model's backbone, but a separate frozen copy:
the model's backbone is fine-tuned in training, this one keeps the ImageNet weights) plus the
``_fc`` head of the same weights file. The category names come from torchvision's weight metadata
(part of torchvision's code, nothing downloads).
"""

import functools
from typing import List

import torch
from torch import nn

from ..backbone.efficientnet import D2EfficientNetLite, packaged_weights_path

__all__ = [
    "ImageNetClassifier",
    "imagenet_categories",
    "normalise_frames",
]

# EfficientNet-Lite (TF Lite) input normalisation of 0-255 RGB: (x - 127) / 128.
PIXEL_MEAN = 127.0
PIXEL_STD = 128.0


@functools.lru_cache(maxsize=1)
def imagenet_categories() -> List[str]:
    """The 1000 ImageNet-1k category names in the classifier's output order."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


class ImageNetClassifier(nn.Module):
    """Frozen EfficientNet-Lite ImageNet classifier: ``(N, 3, S, S)`` -> ``(N, 1000)`` logits."""

    def __init__(self, variant: str = "efficientnet-lite0", weights: str = ""):
        """
        Args:
            variant: "efficientnet-lite0" .. "efficientnet-lite2" (packages with weights ship).
            weights: checkpoint path holding the backbone and ``_fc``; "" -> the packaged file.

        Raises:
            ImportError: the weights package is missing (the message names the pip package).
            KeyError: the checkpoint lacks the ImageNet head ``_fc``.
        """
        super().__init__()
        path = weights or packaged_weights_path(variant)
        self.backbone = D2EfficientNetLite(
            variant=variant, weights=path, out_features=("res5",), norm="FrozenBN"
        )
        state = torch.load(path, map_location="cpu", weights_only=True)
        if "_fc.weight" not in state or "_fc.bias" not in state:
            raise KeyError(f"{path} holds no ImageNet head (_fc.weight, _fc.bias)")
        self.fc = nn.Linear(*state["_fc.weight"].shape[::-1])
        self.fc.load_state_dict({"weight": state["_fc.weight"], "bias": state["_fc.bias"]})
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> "ImageNetClassifier":
        """Always in eval mode (frozen)."""
        return super().train(False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` normalised images -> ``(N, F, ceil(H / 32), ceil(W / 32))``."""
        return self.backbone(x)["res5"]

    def head(self, pooled: torch.Tensor) -> torch.Tensor:
        """``(..., F)`` pooled features -> ``(..., 1000)`` ImageNet logits."""
        return self.fc(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` normalised images -> ``(N, 1000)`` ImageNet logits."""
        return self.head(self.features(x).mean(dim=(2, 3)))


def normalise_frames(frames: torch.Tensor, input_format: str) -> torch.Tensor:
    """uint8 ``(T, 3, H, W)`` frames, ``input_format`` order -> float RGB ``(x - 127) / 128``."""
    if input_format not in ("RGB", "BGR"):
        raise ValueError(f"image_tags takes RGB or BGR frames, INPUT.FORMAT is {input_format!r}")
    x = frames.float()
    if input_format == "BGR":
        x = x.flip(1)
    return (x - PIXEL_MEAN) / PIXEL_STD
