"""The crop branch: an ImageNet CNN encoding the crops (cut by ``ovavss_d2.modeling.crops``) and
the 2048 -> 512 -> K head.

Shape letters: ``R`` crops, ``S`` crop side, ``F`` pooled CNN feature size, ``E`` hidden
(embedding) size, ``K`` crop classes, ``D`` audio-token size of the TPAVI model.
"""

import logging
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from detectron2.layers import FrozenBatchNorm2d
from torch import nn

__all__ = ["CropEncoder", "CropHead", "build_crop_encoder"]

logger = logging.getLogger(__name__)


class CropEncoder(nn.Module):
    """A separate ImageNet CNN: RGB 0-255 crops ``(R, 3, S, S)`` -> pooled features ``(R, F)``."""

    def __init__(
        self,
        trunk: nn.Module,
        feature_dim: int,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
    ):
        """
        Args:
            trunk: maps normalised images ``(R, 3, S, S)`` to a map ``(R, F, h, w)`` or to
                ``{name: map}``
                (the coarsest entry is pooled).
            feature_dim: F.
            pixel_mean, pixel_std: RGB normalisation of the trunk's input (0-255 scale).
        """
        super().__init__()
        self.trunk = trunk
        self.feature_dim = feature_dim
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(1, 3, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(1, 3, 1, 1), False)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        out = self.trunk((crops - self.pixel_mean) / self.pixel_std)
        if isinstance(out, dict):
            out = out[min(out, key=lambda k: out[k].shape[-1])]
        return out.mean(dim=(2, 3))


def _torchvision_resnet50(weights: str) -> nn.Module:
    """torchvision ResNet-50 up to its last stage (``(R, 2048, S/32, S/32)``), BatchNorm frozen."""
    from torchvision.models import ResNet50_Weights, resnet50

    if weights == "torchvision":  # downloads from download.pytorch.org on first use
        net = resnet50(weights=ResNet50_Weights.IMAGENET1K_V1)
    else:
        net = resnet50(weights=None)
        if weights:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            state = {k: v for k, v in state.items() if not k.startswith("fc.")}
            try:
                missing, unexpected = net.load_state_dict(state, strict=False)
            except RuntimeError as e:  # shape mismatches
                raise ValueError(
                    f"{weights} is not a torchvision ResNet-50 state dict: {e}"
                ) from None
            missing = [k for k in missing if not k.startswith("fc.")]
            if missing or unexpected:
                raise ValueError(
                    f"{weights} is not a torchvision ResNet-50 state dict: missing {missing[:3]}, "
                    f"unexpected {unexpected[:3]}"
                )
            logger.info("Crop branch: ResNet-50 ImageNet weights from %s", weights)
        else:
            logger.warning(
                "Crop branch ResNet-50 is randomly initialised: set MODEL.TPAVI.CROP_LOSS."
                "CNN_WEIGHTS to torchvision's ImageNet checkpoint (resnet50-0676ba61.pth) or to "
                "'torchvision'"
            )
    trunk = nn.Sequential(*list(net.children())[:-2])  # drop avgpool and fc
    return FrozenBatchNorm2d.convert_frozen_batchnorm(trunk)


def build_crop_encoder(
    cnn: str,
    weights: str,
    pixel_mean: Sequence[float],
    pixel_std: Sequence[float],
    feature_dim: int = 0,
) -> CropEncoder:
    """Build the separate crop CNN.

    Args:
        cnn: "torchvision-resnet50" or "efficientnet-lite0" .. "efficientnet-lite4".
        weights: see ``MODEL.TPAVI.CROP_LOSS.CNN_WEIGHTS``.
        pixel_mean, pixel_std: RGB input normalisation.
        feature_dim: expected F; 0 accepts the CNN's.
    """
    if cnn == "torchvision-resnet50":
        trunk, dim = _torchvision_resnet50(weights), 2048
    elif cnn.startswith("efficientnet-lite"):
        from ...modeling.backbone import D2EfficientNetLite

        trunk = D2EfficientNetLite(
            variant=cnn, weights=weights, out_features=["res5"], norm="FrozenBN"
        )
        dim = trunk.output_shape()["res5"].channels
    else:
        raise ValueError(
            "MODEL.TPAVI.CROP_LOSS.CNN must be 'torchvision-resnet50' or 'efficientnet-lite<n>', "
            f"got {cnn!r}"
        )
    if feature_dim and feature_dim != dim:
        raise ValueError(
            f"MODEL.TPAVI.CROP_LOSS.FEATURE_DIM is {feature_dim} but {cnn} gives {dim}-d features"
        )
    return CropEncoder(trunk, dim, pixel_mean, pixel_std)


class CropHead(nn.Module):
    """``F -> E`` embedding (linear + ReLU), then ``E -> K`` class logits and ``E -> D`` (audio).

    The class layer exists only with ``num_classes > 0`` and the audio projection only with
    ``audio_dim > 0``, so a disabled loss leaves no parameter without a gradient.
    """

    def __init__(
        self, feature_dim: int, hidden_dim: int = 512, num_classes: int = 0, audio_dim: int = 0
    ):
        super().__init__()
        self.embed = nn.Linear(feature_dim, hidden_dim)
        self.classifier = nn.Linear(hidden_dim, num_classes) if num_classes > 0 else None
        self.to_audio = nn.Linear(hidden_dim, audio_dim) if audio_dim > 0 else None

    def forward(self, features: torch.Tensor) -> Dict[str, Optional[torch.Tensor]]:
        """
        Args:
            features: ``(R, F)`` pooled crop features.

        Returns:
            ``{"embeddings": (R, E), "logits": (R, K) or None, "audio_space": (R, D) or None}``.
        """
        emb = F.relu(self.embed(features))
        return {
            "embeddings": emb,
            "logits": self.classifier(emb) if self.classifier is not None else None,
            "audio_space": self.to_audio(emb) if self.to_audio is not None else None,
        }
