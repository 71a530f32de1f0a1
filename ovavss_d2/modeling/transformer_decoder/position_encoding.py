"""Sine position encodings for pixels (2-D) and frames (1-D).

Shape letters: N frames or images, T frames per clip, C channels, H x W feature size.
"""

import math

import torch
from torch import nn


def sine_encoding_1d(
    positions: torch.Tensor, dim: int, temperature: float = 10000.0
) -> torch.Tensor:
    """Transformer-style sine/cosine encoding of scalar positions.

    Args:
        positions: float tensor of any shape ``S`` (e.g. frame indices ``(T,)``).
        dim: output channels, even.
        temperature: wavelength base.

    Returns:
        ``(*S, dim)``: channels ``[sin(p / w_0), cos(p / w_0), sin(p / w_1), cos(p / w_1), ...]``.
    """
    if dim % 2 != 0:
        raise ValueError(f"sine encoding needs an even dim, got {dim}")
    dim_t = torch.arange(dim // 2, dtype=torch.float32, device=positions.device)
    dim_t = temperature ** (2 * dim_t / dim)
    angles = positions.float()[..., None] / dim_t  # (*S, dim/2)
    return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)


class PositionEmbeddingSine(nn.Module):
    """2-D sine position encoding of a feature map (DETR's, without padding masks).

    Half of the channels encode the row, half the column; with ``normalize`` coordinates are scaled
    to ``[0, scale]`` so the encoding does not depend on the map size.
    """

    def __init__(
        self,
        num_pos_feats: int = 128,
        temperature: float = 10000.0,
        normalize: bool = True,
        scale: float = 2 * math.pi,
    ):
        """
        Args:
            num_pos_feats: channels per axis; the output has ``2 * num_pos_feats`` channels.
            temperature: wavelength base.
            normalize: scale coordinates to ``[0, scale]``.
            scale: upper end of the normalised coordinates.
        """
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.normalize = normalize
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: ``(N, C, H, W)``; only its shape, device and dtype are used.

        Returns:
            ``(N, 2 * num_pos_feats, H, W)`` in ``x.dtype``.
        """
        n, _, h, w = x.shape
        y_embed = torch.arange(1, h + 1, dtype=torch.float32, device=x.device)
        x_embed = torch.arange(1, w + 1, dtype=torch.float32, device=x.device)
        if self.normalize:
            eps = 1e-6
            y_embed = (y_embed - 0.5) / (h + eps) * self.scale
            x_embed = (x_embed - 0.5) / (w + eps) * self.scale
        pos_y = sine_encoding_1d(y_embed, self.num_pos_feats, self.temperature)  # (H, F)
        pos_x = sine_encoding_1d(x_embed, self.num_pos_feats, self.temperature)  # (W, F)
        pos = torch.cat(
            (
                pos_y[:, None, :].expand(h, w, self.num_pos_feats),
                pos_x[None, :, :].expand(h, w, self.num_pos_feats),
            ),
            dim=-1,
        )  # (H, W, 2F)
        return pos.permute(2, 0, 1)[None].expand(n, -1, -1, -1).to(x.dtype)


class TemporalEmbedding(nn.Module):
    """Frame-index embedding ``(T,) -> (T, C)``: sine (any T), learned (T <= max_frames) or none."""

    def __init__(self, dim: int, mode: str = "sine", max_frames: int = 64):
        """
        Args:
            dim: output channels.
            mode: ``"sine"``, ``"learned"`` or ``"none"`` (all zeros).
            max_frames: table size of the learned mode.
        """
        super().__init__()
        if mode not in ("sine", "learned", "none"):
            raise ValueError(f"unknown temporal embedding {mode!r}; use sine, learned or none")
        self.dim = dim
        self.mode = mode
        self.max_frames = max_frames
        self.table = nn.Embedding(max_frames, dim) if mode == "learned" else None

    def forward(self, num_frames: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """
        Args:
            num_frames: T.

        Returns:
            ``(T, dim)``.
        """
        if self.mode == "none":
            return torch.zeros(num_frames, self.dim, device=device, dtype=dtype)
        if self.mode == "learned":
            if num_frames > self.max_frames:
                raise ValueError(
                    f"{num_frames} frames exceed the learned temporal embedding's "
                    f"{self.max_frames} (MODEL.TRANSFORMER_DECODER.MAX_NUM_FRAMES)"
                )
            return self.table.weight[:num_frames].to(dtype)
        t = torch.arange(num_frames, device=device, dtype=torch.float32)
        return sine_encoding_1d(t, self.dim).to(dtype)
