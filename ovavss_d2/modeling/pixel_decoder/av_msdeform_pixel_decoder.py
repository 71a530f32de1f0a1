"""Audio-fused multi-scale deformable-attention pixel decoder.

Shape letters: B clips, T frames per clip, N = B * T frames (frames of a clip contiguous, index
``b * T + t``), C_k backbone channels of level k, D = conv_dim, L transformer levels, S = sum of
H_l * W_l tokens over those levels, C_a audio channels.
"""

from typing import Dict, List, Optional, Tuple

import fvcore.nn.weight_init as weight_init
import torch
from detectron2.config import configurable
from detectron2.layers import Conv2d, ShapeSpec, get_norm
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from ..transformer_decoder.position_encoding import PositionEmbeddingSine
from .av_fusion import AudioVisualFusion
from .msdeform_attn import MSDeformAttn


class MSDeformAttnEncoderLayer(nn.Module):
    """Deformable self-attention over all levels, then an FFN; post-norm residuals."""

    def __init__(
        self,
        d_model: int = 256,
        d_ffn: int = 1024,
        dropout: float = 0.0,
        n_levels: int = 3,
        n_heads: int = 8,
        n_points: int = 4,
    ):
        super().__init__()
        self.self_attn = MSDeformAttn(d_model, n_levels, n_heads, n_points)
        self.dropout1 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, d_ffn)
        self.linear2 = nn.Linear(d_ffn, d_model)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(d_model)
        for linear in (self.linear1, self.linear2):
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)

    def forward(
        self,
        src: torch.Tensor,
        pos: torch.Tensor,
        reference_points: torch.Tensor,
        spatial_shapes: List[Tuple[int, int]],
    ) -> torch.Tensor:
        """``src``, ``pos``: ``(N, S, D)``; ``reference_points``: ``(N or 1, S, L, 2)``."""
        reference_points = reference_points.expand(src.shape[0], -1, -1, -1)
        attn = self.self_attn(src + pos, reference_points, src, spatial_shapes)
        src = self.norm1(src + self.dropout1(attn))
        ffn = self.linear2(self.dropout2(F.relu(self.linear1(src))))
        return self.norm2(src + self.dropout3(ffn))


def _reference_points(
    spatial_shapes: List[Tuple[int, int]], device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Pixel centres of every level, normalised to ``[0, 1]``: ``(1, S, L, 2)`` as ``(x, y)``.

    Maps are unpadded (valid ratio 1), so a token's reference point is the same on every level.
    """
    points = []
    for h, w in spatial_shapes:
        ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) / h
        xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) / w
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack((grid_x.reshape(-1), grid_y.reshape(-1)), -1))  # (H*W, 2)
    points = torch.cat(points, 0)  # (S, 2)
    return points[None, :, None, :].expand(1, -1, len(spatial_shapes), 2)


class AVMSDeformAttnPixelDecoder(nn.Module):
    """Mask2Former's multi-scale deformable-attention pixel decoder with audio fusion.

    Per frame: 1x1 projections of the transformer levels (e.g. res3-res5) to D channels, flattened
    into one token sequence with 2-D sine positions plus a level embedding; ONE bi-directional
    audio-visual attention fusion layer (:class:`AudioVisualFusion`) with the clip's audio; a stack
    of deformable-attention encoder layers (plain PyTorch); then FPN-style lateral fusion of the
    finer backbone levels (res2) down to ``common_stride`` for the mask features.

    Frames are independent in the encoder; the only cross-frame path is the fusion layer's
    attention to the clip's audio tokens (``audio_context="clip"``). Clips never interact.
    """

    @configurable
    def __init__(
        self,
        input_shape: Dict[str, ShapeSpec],
        *,
        transformer_in_features: List[str],
        conv_dim: int,
        mask_dim: int,
        norm: str = "GN",
        common_stride: int = 4,
        num_encoder_layers: int = 6,
        num_heads: int = 8,
        num_points: int = 4,
        dim_feedforward: int = 1024,
        dropout: float = 0.0,
        av_fusion: Optional[nn.Module] = None,
        recompute_encoder_layers: bool = False,
    ):
        """
        Args:
            input_shape: backbone features the decoder reads, name -> ShapeSpec (channels, stride).
            transformer_in_features: names of the levels given to the deformable encoder (at
                least 3; the 3 coarsest are the multi-scale outputs).
            conv_dim: D, channels of the decoder's maps.
            mask_dim: channels of the mask features.
            norm: norm of the projections and FPN convs (Detectron2 ``get_norm`` name).
            common_stride: stride of the mask features.
            num_encoder_layers, num_heads, num_points, dim_feedforward, dropout: the deformable
                encoder's layers, heads, sampling points per head and level, FFN width, dropout.
            av_fusion: module called as ``av_fusion(tokens (N, S, D), pos (N, S, D), audio (B, T,
                C_a), T) -> (N, S, D)`` before the encoder (e.g. :class:`AudioVisualFusion`);
                None: no fusion.
            recompute_encoder_layers: in training, keep only each encoder layer's input for
                backward and recompute the layer there (activation checkpointing): less memory,
                one more forward of the encoder.
        """
        super().__init__()
        if len(transformer_in_features) < 3:
            raise ValueError("the pixel decoder needs at least 3 transformer levels")
        missing = set(transformer_in_features) - set(input_shape)
        if missing:
            raise ValueError(f"transformer features {sorted(missing)} are not in the input")
        # Finest first.
        input_shape = dict(sorted(input_shape.items(), key=lambda item: item[1].stride))
        self.in_features = list(input_shape)
        # Coarsest first: level 0 is stride 32.
        self.transformer_in_features = sorted(
            transformer_in_features, key=lambda name: -input_shape[name].stride
        )
        self.conv_dim = conv_dim
        self.mask_dim = mask_dim
        self.common_stride = common_stride
        self.num_levels = len(self.transformer_in_features)

        self.input_proj = nn.ModuleList()
        for name in self.transformer_in_features:
            conv = nn.Conv2d(input_shape[name].channels, conv_dim, kernel_size=1)
            nn.init.xavier_uniform_(conv.weight, gain=1)
            nn.init.zeros_(conv.bias)
            self.input_proj.append(nn.Sequential(conv, get_norm(norm, conv_dim)))
        self.pe_layer = PositionEmbeddingSine(conv_dim // 2, normalize=True)
        self.level_embed = nn.Parameter(torch.empty(self.num_levels, conv_dim))
        nn.init.normal_(self.level_embed)
        self.av_fusion = av_fusion
        self.recompute_encoder_layers = recompute_encoder_layers
        self.encoder_layers = nn.ModuleList(
            MSDeformAttnEncoderLayer(
                conv_dim, dim_feedforward, dropout, self.num_levels, num_heads, num_points
            )
            for _ in range(num_encoder_layers)
        )

        # FPN levels: the inputs finer than the finest transformer level, down to common_stride
        # (res2 for the defaults), merged coarse to fine.
        min_transformer_stride = min(input_shape[f].stride for f in self.transformer_in_features)
        self.fpn_features = [
            name
            for name in self.in_features
            if common_stride <= input_shape[name].stride < min_transformer_stride
        ][::-1]
        strides = [input_shape[f].stride for f in self.fpn_features] or [min_transformer_stride]
        if strides[-1] != common_stride:
            raise ValueError(
                f"no input feature reaches common_stride {common_stride}: inputs "
                f"{ {k: v.stride for k, v in input_shape.items()} }"
            )
        use_bias = norm == ""
        self.lateral_convs = nn.ModuleList()
        self.output_convs = nn.ModuleList()
        for name in self.fpn_features:
            lateral = Conv2d(
                input_shape[name].channels,
                conv_dim,
                kernel_size=1,
                bias=use_bias,
                norm=get_norm(norm, conv_dim),
            )
            output = Conv2d(
                conv_dim,
                conv_dim,
                kernel_size=3,
                padding=1,
                bias=use_bias,
                norm=get_norm(norm, conv_dim),
                activation=F.relu,
            )
            weight_init.c2_xavier_fill(lateral)
            weight_init.c2_xavier_fill(output)
            self.lateral_convs.append(lateral)
            self.output_convs.append(output)
        self.mask_features = Conv2d(conv_dim, mask_dim, kernel_size=1)
        weight_init.c2_xavier_fill(self.mask_features)

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec], audio_dim: int):
        pd = cfg.MODEL.PIXEL_DECODER
        fusion = pd.AV_FUSION
        av_fusion = None
        if fusion.ENABLED:
            av_fusion = AudioVisualFusion(
                pd.CONV_DIM,
                audio_dim,
                num_heads=fusion.NUM_HEADS,
                dropout=fusion.DROPOUT,
                layer_scale_init=fusion.LAYER_SCALE_INIT,
                audio_context=fusion.AUDIO_CONTEXT,
                max_temporal_offset=fusion.MAX_TEMPORAL_OFFSET,
            )
        return {
            "input_shape": {k: v for k, v in input_shape.items() if k in pd.IN_FEATURES},
            "transformer_in_features": list(pd.TRANSFORMER_IN_FEATURES),
            "conv_dim": pd.CONV_DIM,
            "mask_dim": pd.MASK_DIM,
            "norm": pd.NORM,
            "common_stride": pd.COMMON_STRIDE,
            "num_encoder_layers": pd.NUM_ENCODER_LAYERS,
            "num_heads": pd.NUM_HEADS,
            "num_points": pd.NUM_POINTS,
            "dim_feedforward": pd.DIM_FEEDFORWARD,
            "dropout": pd.DROPOUT,
            "av_fusion": av_fusion,
            "recompute_encoder_layers": pd.RECOMPUTE_ENCODER_LAYERS,
        }

    def forward_features(
        self, features: Dict[str, torch.Tensor], audio: torch.Tensor, num_frames: int
    ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """
        Args:
            features: backbone maps, name -> ``(N, C_k, H_k, W_k)``.
            audio: ``(B, T, C_a)``, one embedding per frame.
            num_frames: T.

        Returns:
            mask_features: ``(N, mask_dim, H / common_stride, W / common_stride)``.
            multi_scale_features: 3 maps ``(N, D, H_i, W_i)``, stride 32, 16, 8 (the 3 coarsest
            transformer levels).
        """
        srcs, pos, spatial_shapes = [], [], []
        for level, name in enumerate(self.transformer_in_features):
            x = features[name]
            spatial_shapes.append((x.shape[-2], x.shape[-1]))
            srcs.append(self.input_proj[level](x).flatten(2).transpose(1, 2))  # (N, H*W, D)
            level_pos = self.pe_layer(x).flatten(2).transpose(1, 2)
            pos.append(level_pos + self.level_embed[level].to(level_pos.dtype))
        src = torch.cat(srcs, 1)  # (N, S, D)
        pos = torch.cat(pos, 1)

        if self.av_fusion is not None:
            src = self.av_fusion(src, pos, audio, num_frames)
        # float32 even under autocast: fp16 would round the locations on large maps.
        reference_points = _reference_points(spatial_shapes, src.device, torch.float32)
        recompute = self.recompute_encoder_layers and self.training and torch.is_grad_enabled()
        for layer in self.encoder_layers:
            if recompute:
                src = checkpoint(
                    layer, src, pos, reference_points, spatial_shapes, use_reentrant=False
                )
            else:
                src = layer(src, pos, reference_points, spatial_shapes)

        n = src.shape[0]
        tokens = src.split([h * w for h, w in spatial_shapes], 1)
        out = [  # (N, H*W, D) -> (N, D, H, W), coarsest first
            t.transpose(1, 2).reshape(n, self.conv_dim, h, w)
            for t, (h, w) in zip(tokens, spatial_shapes)
        ]
        y = out[-1]
        for name, lateral_conv, output_conv in zip(
            self.fpn_features, self.lateral_convs, self.output_convs
        ):
            x = features[name]
            y = lateral_conv(x) + F.interpolate(
                y, size=x.shape[-2:], mode="bilinear", align_corners=False
            )
            y = output_conv(y)
        return self.mask_features(y), out[:3]

    def forward(
        self, features: Dict[str, torch.Tensor], audio: torch.Tensor, num_frames: int
    ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """Same as :meth:`forward_features`."""
        return self.forward_features(features, audio, num_frames)
