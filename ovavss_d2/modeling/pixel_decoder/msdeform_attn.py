"""Multi-scale deformable attention (Deformable DETR) in plain PyTorch.

Sampling uses ``F.grid_sample``, so it runs on CPU and GPU without a compiled op.

Shape letters: N images (frames), Lq queries, S = sum of H_l * W_l value tokens over the levels,
L levels, h heads, P sampling points per head and level, C channels (C_h = C / h per head).
Locations are normalised to ``[0, 1]`` with ``(0, 0)`` the top-left corner of the map and pixel
``(i, j)`` centred at ``((j + 0.5) / W, (i + 0.5) / H)``.
"""

import math
from typing import List, Tuple

import torch
from torch import nn
from torch.nn import functional as F


def ms_deform_attn_sample(
    value: torch.Tensor,
    spatial_shapes: List[Tuple[int, int]],
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """Bilinearly sample every level at the given locations and take the weighted sum.

    Args:
        value: ``(N, S, h, C_h)``, the levels' tokens flattened row-major and concatenated.
        spatial_shapes: L pairs ``(H_l, W_l)``.
        sampling_locations: ``(N, Lq, h, L, P, 2)``, ``(x, y)`` in ``[0, 1]``; samples outside the
            map read zeros.
        attention_weights: ``(N, Lq, h, L, P)``.

    Returns:
        ``(N, Lq, h * C_h)``.
    """
    n, _, num_heads, head_dim = value.shape
    _, num_queries, _, num_levels, num_points, _ = sampling_locations.shape
    sizes = [h * w for h, w in spatial_shapes]
    value_levels = value.split(sizes, dim=1)
    # grid_sample wants coordinates in [-1, 1] (align_corners=False: -1 is the map's outer edge).
    # Sample in the locations' dtype (float32 under autocast) and return in the value's.
    grids = 2 * sampling_locations - 1
    compute_dtype = torch.promote_types(value.dtype, grids.dtype)
    grids = grids.to(compute_dtype)
    output = value.new_zeros(n * num_heads, head_dim, num_queries, dtype=compute_dtype)
    for level, (h, w) in enumerate(spatial_shapes):
        # (N, H*W, h, C_h) -> (N*h, C_h, H, W)
        value_l = value_levels[level].permute(0, 2, 3, 1).reshape(n * num_heads, head_dim, h, w)
        value_l = value_l.to(compute_dtype)
        # (N, Lq, h, P, 2) -> (N*h, Lq, P, 2)
        grid_l = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        sampled = F.grid_sample(
            value_l, grid_l, mode="bilinear", padding_mode="zeros", align_corners=False
        )  # (N*h, C_h, Lq, P)
        # (N, Lq, h, P) -> (N*h, 1, Lq, P)
        weights_l = (
            attention_weights[:, :, :, level]
            .transpose(1, 2)
            .reshape(n * num_heads, 1, num_queries, num_points)
        )
        output = output + (sampled * weights_l.to(compute_dtype)).sum(-1)
    # (N*h, C_h, Lq) -> (N, Lq, h*C_h)
    return output.view(n, num_heads * head_dim, num_queries).transpose(1, 2).to(value.dtype)


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention: each query reads P points per head and level around its
    reference point, at offsets and with weights predicted from the query."""

    def __init__(self, d_model: int = 256, n_levels: int = 3, n_heads: int = 8, n_points: int = 4):
        """
        Args:
            d_model: C, channels of queries and values.
            n_levels: L, feature levels.
            n_heads: h, attention heads (C must be divisible by h).
            n_points: P, sampling points per head and level.
        """
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.d_model = d_model
        self.n_levels = n_levels
        self.n_heads = n_heads
        self.n_points = n_points
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        # Start with the heads looking in evenly spread directions, point k at distance k + 1
        # (in pixels of each level), and with uniform attention weights (Deformable DETR's init).
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(self.n_heads, dtype=torch.float32) * (2.0 * math.pi / self.n_heads)
        directions = torch.stack([thetas.cos(), thetas.sin()], -1)  # (h, 2)
        directions = directions / directions.abs().max(-1, keepdim=True)[0]
        scales = torch.arange(1, self.n_points + 1, dtype=torch.float32)  # (P,)
        bias = directions[:, None, None, :] * scales[None, None, :, None]  # (h, 1, P, 2)
        bias = bias.expand(self.n_heads, self.n_levels, self.n_points, 2)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(bias.reshape(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.zeros_(self.value_proj.bias)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def forward(
        self,
        query: torch.Tensor,
        reference_points: torch.Tensor,
        value: torch.Tensor,
        spatial_shapes: List[Tuple[int, int]],
    ) -> torch.Tensor:
        """
        Args:
            query: ``(N, Lq, C)`` (position encoding already added).
            reference_points: ``(N, Lq, L, 2)``, ``(x, y)`` in ``[0, 1]`` per level; offsets are
                measured in pixels of each level.
            value: ``(N, S, C)``, the levels flattened row-major and concatenated.
            spatial_shapes: L pairs ``(H_l, W_l)`` with ``sum(H_l * W_l) == S``.

        Returns:
            ``(N, Lq, C)``.
        """
        n, num_queries, _ = query.shape
        if len(spatial_shapes) != self.n_levels:
            raise ValueError(f"expected {self.n_levels} levels, got {len(spatial_shapes)}")
        if sum(h * w for h, w in spatial_shapes) != value.shape[1]:
            raise ValueError(f"spatial_shapes {spatial_shapes} do not add up to {value.shape[1]}")
        head_dim = self.d_model // self.n_heads
        value = self.value_proj(value).view(n, -1, self.n_heads, head_dim)
        offsets = self.sampling_offsets(query).view(
            n, num_queries, self.n_heads, self.n_levels, self.n_points, 2
        )
        weights = self.attention_weights(query).view(
            n, num_queries, self.n_heads, self.n_levels * self.n_points
        )
        weights = weights.softmax(-1).view(
            n, num_queries, self.n_heads, self.n_levels, self.n_points
        )
        # Offsets are in pixels of each level: divide by (W_l, H_l) to get normalised units.
        # Locations stay at least float32 (fp16 under autocast would round them on large maps).
        normalizer = torch.tensor(
            [[w, h] for h, w in spatial_shapes],
            dtype=torch.promote_types(query.dtype, torch.float32),
            device=query.device,
        )  # (L, 2)
        locations = (
            reference_points[:, :, None, :, None, :]
            + offsets / normalizer[None, None, None, :, None, :]
        )  # (N, Lq, h, L, P, 2)
        output = ms_deform_attn_sample(value, spatial_shapes, locations, weights)
        return self.output_proj(output)
