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
from torch.autograd.function import once_differentiable
from torch.nn import functional as F


def ms_deform_attn_sample(
    value: torch.Tensor,
    spatial_shapes: List[Tuple[int, int]],
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """Bilinearly sample every level at the given locations and take the weighted sum.

    Memory-lean: the samples are accumulated one point at a time and recomputed in backward, so
    only the inputs are kept for backward, never the ``(N*h, C_h, Lq, P)`` samples of a level.

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
    num_queries = sampling_locations.shape[1]
    # Sample in the locations' dtype (float32 under autocast) and return in the value's.
    compute_dtype = torch.promote_types(value.dtype, sampling_locations.dtype)
    output = _SampleAndSum.apply(
        value.to(compute_dtype),
        sampling_locations.to(compute_dtype),
        attention_weights.to(compute_dtype),
        tuple((int(h), int(w)) for h, w in spatial_shapes),
    )  # (N*h, C_h, Lq)
    # (N*h, C_h, Lq) -> (N, Lq, h*C_h)
    return output.view(n, num_heads * head_dim, num_queries).transpose(1, 2).to(value.dtype)


def _level_inputs(
    value: torch.Tensor,
    spatial_shapes: Tuple[Tuple[int, int], ...],
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
    level: int,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Level ``level`` in ``grid_sample``'s layout: the map ``(N*h, C_h, H_l, W_l)``, the grid
    ``(N*h, P, Lq, 2)`` in ``[-1, 1]`` and the weights ``(N*h, P, Lq)``."""
    n, _, num_heads, head_dim = value.shape
    start = sum(h * w for h, w in spatial_shapes[:level])
    h, w = spatial_shapes[level]
    # (N, H*W, h, C_h) -> (N*h, C_h, H, W)
    value_l = (
        value[:, start : start + h * w].permute(0, 2, 3, 1).reshape(n * num_heads, head_dim, h, w)
    )
    # grid_sample wants coordinates in [-1, 1] (align_corners=False: -1 is the map's outer edge).
    # (N, Lq, h, P, 2) -> (N*h, P, Lq, 2)
    grid_l = (2 * sampling_locations[:, :, :, level] - 1).permute(0, 2, 3, 1, 4).flatten(0, 1)
    # (N, Lq, h, P) -> (N*h, P, Lq)
    weights_l = attention_weights[:, :, :, level].permute(0, 2, 3, 1).flatten(0, 1)
    return value_l, grid_l, weights_l


def _grid_sample(value_l: torch.Tensor, grid_p: torch.Tensor) -> torch.Tensor:
    """``(N*h, C_h, Lq)``: the map ``value_l (N*h, C_h, H, W)`` bilinearly sampled at one point
    per query, ``grid_p (N*h, 1, Lq, 2)`` in ``[-1, 1]``; zeros outside the map."""
    sampled = F.grid_sample(
        value_l, grid_p, mode="bilinear", padding_mode="zeros", align_corners=False
    )  # (N*h, C_h, 1, Lq)
    return sampled.squeeze(2)


class _SampleAndSum(torch.autograd.Function):
    """``(N*h, C_h, Lq)`` weighted sum of the samples, recomputing them point by point in
    backward (inputs as :func:`ms_deform_attn_sample`'s, in one dtype)."""

    @staticmethod
    def forward(ctx, value, sampling_locations, attention_weights, spatial_shapes):
        n, _, num_heads, head_dim = value.shape
        num_queries, num_points = sampling_locations.shape[1], sampling_locations.shape[4]
        output = value.new_zeros(n * num_heads, head_dim, num_queries)
        for level in range(len(spatial_shapes)):
            value_l, grid_l, weights_l = _level_inputs(
                value, spatial_shapes, sampling_locations, attention_weights, level
            )
            for point in range(num_points):
                sampled = _grid_sample(value_l, grid_l[:, point : point + 1])
                output.addcmul_(sampled, weights_l[:, None, point])
        ctx.save_for_backward(value, sampling_locations, attention_weights)
        ctx.spatial_shapes = spatial_shapes
        return output

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        value, sampling_locations, attention_weights = ctx.saved_tensors
        grad_output = grad_output.contiguous()
        spatial_shapes = ctx.spatial_shapes
        n, _, num_heads, head_dim = value.shape
        num_queries, num_points = sampling_locations.shape[1], sampling_locations.shape[4]
        need_value, need_locations, need_weights = ctx.needs_input_grad[:3]
        grad_value = torch.zeros_like(value) if need_value else None
        grad_locations = torch.zeros_like(sampling_locations) if need_locations else None
        grad_weights = torch.zeros_like(attention_weights) if need_weights else None
        start = 0
        for level, (h, w) in enumerate(spatial_shapes):
            value_l, grid_l, weights_l = _level_inputs(
                value, spatial_shapes, sampling_locations, attention_weights, level
            )
            value_l = value_l.detach().requires_grad_(need_value)
            grad_value_l = torch.zeros_like(value_l) if need_value else None
            for point in range(num_points):
                grid_p = grid_l[:, point : point + 1].detach().requires_grad_(need_locations)
                with torch.enable_grad():
                    sampled = _grid_sample(value_l, grid_p)
                if need_weights:
                    # d out / d weight of a point: its sample, dotted with the output's gradient.
                    grad_weights_l = (grad_output * sampled.detach()).sum(1)  # (N*h, Lq)
                    grad_weights[:, :, :, level, point] = grad_weights_l.view(
                        n, num_heads, num_queries
                    ).transpose(1, 2)
                if need_value or need_locations:
                    inputs = [t for t in (value_l, grid_p) if t.requires_grad]
                    grads = list(
                        torch.autograd.grad(
                            sampled, inputs, grad_output * weights_l[:, None, point]
                        )
                    )
                    if need_value:
                        grad_value_l += grads.pop(0)
                    if need_locations:
                        # (N*h, 1, Lq, 2) -> (N, Lq, h, 2); d grid / d location = 2.
                        grad_locations[:, :, :, level, point] = 2 * grads.pop(0).view(
                            n, num_heads, num_queries, 2
                        ).transpose(1, 2)
            if need_value:
                # (N*h, C_h, H, W) -> (N, H*W, h, C_h)
                grad_value[:, start : start + h * w] = grad_value_l.view(
                    n, num_heads, head_dim, h * w
                ).permute(0, 3, 1, 2)
            start += h * w
        return grad_value, grad_locations, grad_weights, None


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


def _ms_deform_attn_sample_reference(
    value: torch.Tensor,
    spatial_shapes: List[Tuple[int, int]],
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """:func:`ms_deform_attn_sample` with plain autograd, as before issue 19: it keeps the
    ``(N*h, C_h, Lq, P)`` samples of every level for backward. Not used by the model: the
    reference of the tests and of ``tools/benchmark.py --deform-attn-memory``. Arguments and
    result as :func:`ms_deform_attn_sample`.
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
