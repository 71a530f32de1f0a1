"""FPN-like decoder of the TPAVI baseline: adapters, TPAVI modules, top-down fusion, mask head.

Shape letters: ``N`` frames of a batch (clip after clip), ``B`` clips, ``T`` audio tokens per clip,
``C_k`` channels of backbone level k, ``D`` decoder channels, ``K`` output channels (1 for binary,
classes + 1 for semantic), ``H_k x W_k`` map size at level k.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from detectron2.layers import Conv2d, ShapeSpec, get_norm
from torch import nn

from .tpavi import TPAVI

__all__ = ["TPAVIDecoder"]


def _conv3x3(in_ch: int, out_ch: int, norm: str, relu: bool = True) -> Conv2d:
    return Conv2d(
        in_ch,
        out_ch,
        kernel_size=3,
        padding=1,
        bias=not norm,
        norm=get_norm(norm, out_ch) if norm else None,
        activation=F.relu if relu else None,
    )


class _ResidualConvUnit(nn.Module):
    """``x + conv(relu(conv(relu(x))))``: the refinement unit of the fusion blocks."""

    def __init__(self, dim: int, norm: str):
        super().__init__()
        self.conv1 = _conv3x3(dim, dim, norm, relu=True)
        self.conv2 = _conv3x3(dim, dim, norm, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(F.relu(x)))


class _FusionBlock(nn.Module):
    """Refine a lateral map, add the upsampled coarser output, refine again.

    The coarsest level has nothing to add, so its block has only the output unit.
    """

    def __init__(self, dim: int, norm: str, has_coarser: bool = True):
        super().__init__()
        self.lateral = _ResidualConvUnit(dim, norm) if has_coarser else None
        self.output = _ResidualConvUnit(dim, norm)

    def forward(self, x: torch.Tensor, coarser: Optional[torch.Tensor]) -> torch.Tensor:
        if (coarser is None) != (self.lateral is None):
            raise ValueError(
                "a fusion block gets a coarser map exactly when it is not the coarsest level"
            )
        if coarser is not None:
            up = F.interpolate(coarser, size=x.shape[-2:], mode="bilinear", align_corners=False)
            x = self.lateral(x) + up
        return self.output(x)


class TPAVIDecoder(nn.Module):
    """Per-frame mask logits from backbone features and the clips' audio tokens.

    1. An adapter (3x3 conv) maps every level to ``D`` channels.
    2. A TPAVI module lets the pixels of the levels in ``tpavi_stages`` attend to the clip's audio.
    3. Fusion blocks merge the levels top-down (coarsest first) to the finest level.
    4. A head predicts ``K`` logits per pixel at the finest stride.
    """

    def __init__(
        self,
        input_shape: Dict[str, ShapeSpec],
        *,
        in_features: Sequence[str],
        tpavi_stages: Sequence[str],
        conv_dim: int,
        num_outputs: int,
        inter_dim: int = 0,
        attention: str = "dot",
        norm: str = "GN",
    ):
        """
        Args:
            input_shape: backbone ``output_shape()``.
            in_features: levels to read; their strides must differ.
            tpavi_stages: the levels (a subset of ``in_features``) that get a TPAVI module.
            conv_dim: D, decoder channels (also the audio-token size the TPAVI modules expect).
            num_outputs: K, logits per pixel.
            inter_dim, attention: TPAVI module width and attention form (see ``TPAVI``).
            norm: norm of every convolution ("GN", "BN", "").
        """
        super().__init__()
        missing = [f for f in in_features if f not in input_shape]
        if missing or not in_features:
            raise ValueError(
                f"decoder IN_FEATURES {list(in_features)} not all in backbone outputs "
                f"{sorted(input_shape)}"
            )
        extra = [s for s in tpavi_stages if s not in in_features]
        if extra:
            raise ValueError(f"TPAVI STAGES {extra} are not in IN_FEATURES {list(in_features)}")
        strides = [input_shape[f].stride for f in in_features]
        if len(set(strides)) != len(strides):
            raise ValueError(f"IN_FEATURES {list(in_features)} have repeated strides {strides}")
        # Finest first.
        self.in_features: List[str] = [f for _, f in sorted(zip(strides, in_features))]
        self.tpavi_stages = [f for f in self.in_features if f in tpavi_stages]
        self.common_stride = min(strides)
        self.conv_dim = conv_dim
        self.adapters = nn.ModuleDict(
            {f: _conv3x3(input_shape[f].channels, conv_dim, norm) for f in self.in_features}
        )
        self.tpavi = nn.ModuleDict(
            {
                f: TPAVI(conv_dim, inter_channels=inter_dim, attention=attention, norm=norm)
                for f in self.tpavi_stages
            }
        )
        coarsest = self.in_features[-1]
        self.fusion = nn.ModuleDict(
            {f: _FusionBlock(conv_dim, norm, has_coarser=f != coarsest) for f in self.in_features}
        )
        self.head = nn.Sequential(
            _conv3x3(conv_dim, conv_dim, norm), nn.Conv2d(conv_dim, num_outputs, kernel_size=1)
        )

    def forward(
        self,
        features: Dict[str, torch.Tensor],
        audio: torch.Tensor,
        clip_index: torch.Tensor,
        audio_valid: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """
        Args:
            features: backbone maps ``{level: (N, C_k, H_k, W_k)}``.
            audio: ``(B, T, D)`` projected audio tokens per clip (padded to the longest clip).
            clip_index: ``(N,)`` clip of each frame.
            audio_valid: ``(B, T)`` True for real tokens; None: all real.

        Returns:
            ``logits (N, K, H_0, W_0)`` at the finest level's stride, and the TPAVI outputs
            ``{level: (N, D, H_k, W_k)}`` (for the audio-visual matching regulariser).
        """
        fused: Dict[str, torch.Tensor] = {}
        out = None
        for f in reversed(self.in_features):  # coarsest first
            x = self.adapters[f](features[f])
            if f in self.tpavi:
                x = self.tpavi[f](x, audio, clip_index, audio_valid)
                fused[f] = x
            out = self.fusion[f](x, out)
        return self.head(out), fused
