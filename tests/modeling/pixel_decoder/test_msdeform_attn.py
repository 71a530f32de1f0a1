"""Multi-scale deformable attention: the lean sampling against a naive bilinear-sampling loop and
against the plain-autograd sampling it replaced (outputs and gradients), and what it keeps for
backward."""

import math

import pytest
import torch

from ovavss_d2.modeling.pixel_decoder import msdeform_attn
from ovavss_d2.modeling.pixel_decoder.msdeform_attn import (
    MSDeformAttn,
    _ms_deform_attn_sample_reference,
    ms_deform_attn_sample,
)

SHAPES = [(2, 3), (4, 5), (3, 7)]  # non-square, non-nested sizes
NUM_TOKENS = sum(h * w for h, w in SHAPES)


def naive_bilinear(value_map: torch.Tensor, x: float, y: float) -> torch.Tensor:
    """Sample ``value_map (C, H, W)`` at normalised ``(x, y)``; pixel (i, j) is centred at
    ((j + 0.5) / W, (i + 0.5) / H); neighbours outside the map count as zero."""
    _, h, w = value_map.shape
    px, py = x * w - 0.5, y * h - 0.5
    x0, y0 = math.floor(px), math.floor(py)
    out = torch.zeros(value_map.shape[0], dtype=value_map.dtype)
    for j, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
        for i, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
            if 0 <= i < h and 0 <= j < w:
                out += wx * wy * value_map[:, i, j]
    return out


def naive_ms_deform_attn(value, spatial_shapes, locations, weights):
    """Loop version of ``ms_deform_attn_sample`` (same arguments and result, on the CPU)."""
    value, locations, weights = value.cpu(), locations.cpu(), weights.cpu()
    n, _, num_heads, head_dim = value.shape
    _, num_queries, _, num_levels, num_points, _ = locations.shape
    starts = [0]
    for h, w in spatial_shapes:
        starts.append(starts[-1] + h * w)
    out = torch.zeros(n, num_queries, num_heads, head_dim, dtype=value.dtype)
    for b in range(n):
        for m in range(num_heads):
            for lvl, (h, w) in enumerate(spatial_shapes):
                value_map = value[b, starts[lvl] : starts[lvl + 1], m].T.reshape(head_dim, h, w)
                for q in range(num_queries):
                    for p in range(num_points):
                        x, y = locations[b, q, m, lvl, p].tolist()
                        sample = naive_bilinear(value_map, x, y)
                        out[b, q, m] += weights[b, q, m, lvl, p] * sample
    return out.flatten(2)


def random_inputs(n, num_queries, num_heads, head_dim, shapes, num_points, dtype, device):
    """``value (N, S, h, C_h)``, ``locations (N, Lq, h, L, P, 2)`` partly outside ``[0, 1]``
    (zero padding), ``weights (N, Lq, h, L, P)``, all requiring gradients."""
    g = torch.Generator().manual_seed(0)
    tokens = sum(h * w for h, w in shapes)
    value = torch.randn(n, tokens, num_heads, head_dim, generator=g, dtype=dtype)
    locations = torch.rand(n, num_queries, num_heads, len(shapes), num_points, 2, generator=g)
    locations = locations.to(dtype) * 1.4 - 0.2
    weights = torch.rand(n, num_queries, num_heads, len(shapes), num_points, generator=g)
    weights = weights.to(dtype)
    return [t.to(device).requires_grad_() for t in (value, locations, weights)]


def outputs_and_grads(sample, inputs, shapes):
    """The output of ``sample(value, shapes, locations, weights)`` and the gradients of a random
    linear function of it with respect to the inputs that require them."""
    out = sample(inputs[0], shapes, inputs[1], inputs[2])
    g = torch.Generator().manual_seed(1)
    grad_out = torch.randn(out.shape, generator=g, dtype=out.dtype).to(out.device)
    wanted = [t for t in inputs if t.requires_grad]
    return [out, *torch.autograd.grad(out, wanted, grad_out)]


def test_sampling_matches_naive_reference(device):
    inputs = random_inputs(2, 5, 2, 3, SHAPES, 3, torch.float64, device)
    with torch.no_grad():
        expected = naive_ms_deform_attn(inputs[0], SHAPES, inputs[1], inputs[2])
        actual = ms_deform_attn_sample(inputs[0], SHAPES, inputs[1], inputs[2])
    assert actual.shape == (2, 5, 6)
    torch.testing.assert_close(actual.cpu(), expected, rtol=1e-10, atol=1e-10)


def test_sampling_at_pixel_centre_reads_the_pixel(device):
    value = torch.arange(NUM_TOKENS, dtype=torch.float64, device=device).view(1, -1, 1, 1)
    h, w = SHAPES[1]
    i, j = 2, 3
    locations = torch.zeros(1, 1, 1, 3, 1, 2, dtype=torch.float64, device=device)
    locations[..., 1, 0, :] = torch.tensor([(j + 0.5) / w, (i + 0.5) / h])
    weights = torch.zeros(1, 1, 1, 3, 1, dtype=torch.float64, device=device)
    weights[..., 1, 0] = 1.0
    out = ms_deform_attn_sample(value, SHAPES, locations, weights)
    assert out.item() == pytest.approx(6 + i * w + j)  # level 1 starts at 2 * 3


CASES = {  # n, queries, heads, head_dim, level shapes, points
    "three_levels": (2, 5, 2, 3, SHAPES, 3),
    "one_level_odd": (3, 7, 1, 5, [(5, 1)], 1),
    "four_levels_batch": (4, 9, 3, 2, [(1, 1), (7, 3), (2, 9), (5, 5)], 4),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lean_matches_plain_autograd(device, case, dtype):
    """Outputs and gradients (value, locations, weights) equal the sampling that kept the samples
    for backward; odd sizes, 1 to 4 levels, batches of 2 to 4."""
    n, num_queries, num_heads, head_dim, shapes, num_points = CASES[case]
    inputs = random_inputs(n, num_queries, num_heads, head_dim, shapes, num_points, dtype, device)
    lean = outputs_and_grads(ms_deform_attn_sample, inputs, shapes)
    before = outputs_and_grads(_ms_deform_attn_sample_reference, inputs, shapes)
    assert [t.shape for t in lean] == [t.shape for t in before]
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == torch.float64 else {}
    for got, expected, name in zip(lean, before, ("output", "value", "locations", "weights")):
        torch.testing.assert_close(got, expected, **tol, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize(
    "needs", [(True, False, False), (False, True, False), (False, False, True)]
)
def test_gradient_of_one_input(needs):
    """Only the inputs that require a gradient get one, and it is the same as with all three."""
    inputs = random_inputs(2, 5, 2, 3, SHAPES, 3, torch.float64, "cpu")
    full = outputs_and_grads(ms_deform_attn_sample, inputs, SHAPES)
    for t, need in zip(inputs, needs):
        t.requires_grad_(need)
    part = outputs_and_grads(ms_deform_attn_sample, inputs, SHAPES)
    assert len(part) == 2
    torch.testing.assert_close(part[1], full[1 + needs.index(True)], rtol=0, atol=0)


def test_gradcheck(device):
    shapes = [(2, 3), (3, 2)]
    value = torch.randn(2, 12, 2, 2, dtype=torch.float64, device=device, requires_grad=True)
    # Keep locations away from pixel-grid lines, where bilinear sampling is not differentiable.
    locations = torch.rand(2, 3, 2, 2, 2, 2, dtype=torch.float64, device=device) * 0.8 + 0.1
    weights = torch.rand(2, 3, 2, 2, 2, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda v, loc, wt: ms_deform_attn_sample(v, shapes, loc, wt),
        (value, locations.requires_grad_(), weights),
    )


def largest_saved(sample, inputs, shapes) -> int:
    """Elements of the largest tensor that autograd keeps for backward in ``sample``."""
    sizes = [0]

    def pack(t):
        sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        sample(inputs[0], shapes, inputs[1], inputs[2])
    return max(sizes)


def test_samples_are_not_kept_for_backward():
    n, num_queries, num_heads, head_dim, num_points = 2, 40, 2, 8, 4
    inputs = random_inputs(
        n, num_queries, num_heads, head_dim, SHAPES, num_points, torch.float32, "cpu"
    )
    samples = n * num_heads * head_dim * num_queries * num_points  # one level's samples
    assert largest_saved(_ms_deform_attn_sample_reference, inputs, SHAPES) >= samples
    # The inputs themselves (the locations are the largest here) and nothing bigger.
    assert largest_saved(ms_deform_attn_sample, inputs, SHAPES) == inputs[1].numel()
    assert inputs[1].numel() < samples


def test_low_precision_value_with_float32_locations():
    """Under autocast the value may be bfloat16 while the locations stay float32: sampling runs
    in float32 and the output comes back in the value's dtype, as before."""
    inputs = random_inputs(2, 5, 2, 3, SHAPES, 3, torch.float32, "cpu")
    inputs[0] = inputs[0].detach().bfloat16().requires_grad_()
    lean = outputs_and_grads(ms_deform_attn_sample, inputs, SHAPES)
    before = outputs_and_grads(_ms_deform_attn_sample_reference, inputs, SHAPES)
    assert lean[0].dtype == lean[1].dtype == torch.bfloat16
    for got, expected in zip(lean, before):
        torch.testing.assert_close(got, expected)


def random_module(dtype, device) -> MSDeformAttn:
    """A 3-level MSDeformAttn with random offset and weight projections, so the query really
    moves the samples."""
    torch.manual_seed(0)
    attn = MSDeformAttn(d_model=8, n_levels=3, n_heads=2, n_points=2).to(dtype)
    for layer in (attn.sampling_offsets, attn.attention_weights):
        torch.nn.init.normal_(layer.weight, std=0.5)
    return attn.to(device)


def test_module_matches_naive_reference(device):
    attn = random_module(torch.float64, device)
    n, num_queries = 2, 4
    query = torch.randn(n, num_queries, 8, dtype=torch.float64, device=device)
    value = torch.randn(n, NUM_TOKENS, 8, dtype=torch.float64, device=device)
    reference = torch.rand(n, num_queries, 3, 2, dtype=torch.float64, device=device)
    with torch.no_grad():
        out = attn(query, reference, value, SHAPES)
        offsets = attn.sampling_offsets(query).view(n, num_queries, 2, 3, 2, 2)
        weights = attn.attention_weights(query).view(n, num_queries, 2, 6).softmax(-1)
        locations = torch.empty_like(offsets)
        for lvl, (h, w) in enumerate(SHAPES):
            locations[:, :, :, lvl, :, 0] = reference[:, :, None, lvl, None, 0] + (
                offsets[:, :, :, lvl, :, 0] / w
            )
            locations[:, :, :, lvl, :, 1] = reference[:, :, None, lvl, None, 1] + (
                offsets[:, :, :, lvl, :, 1] / h
            )
        projected = attn.value_proj(value).view(n, NUM_TOKENS, 2, 4)
        expected = naive_ms_deform_attn(
            projected, SHAPES, locations, weights.view(n, num_queries, 2, 3, 2)
        )
        expected = attn.output_proj(expected.to(device))
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)


def module_outputs_and_grads(attn, query, reference, value):
    """Output and gradients w.r.t. query, reference points, value and every parameter."""
    out = attn(query, reference, value, SHAPES)
    grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    inputs = [query, reference, value, *attn.parameters()]
    return [out, *torch.autograd.grad(out, inputs, grad_out.to(out.device))]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_module_gradients_match_plain_autograd(device, dtype, monkeypatch):
    """The whole module (offsets and weights from the query, locations from the reference points)
    trains the same with the lean sampling as with the one it replaced."""
    attn = random_module(dtype, device)
    g = torch.Generator().manual_seed(2)
    query = torch.randn(3, 6, 8, generator=g, dtype=dtype)
    reference = torch.rand(3, 6, 3, 2, generator=g, dtype=dtype)
    value = torch.randn(3, NUM_TOKENS, 8, generator=g, dtype=dtype)
    inputs = [t.to(device).requires_grad_() for t in (query, reference, value)]
    lean = module_outputs_and_grads(attn, *inputs)
    monkeypatch.setattr(msdeform_attn, "ms_deform_attn_sample", _ms_deform_attn_sample_reference)
    before = module_outputs_and_grads(attn, *inputs)
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == torch.float64 else {}
    for got, expected in zip(lean, before):
        torch.testing.assert_close(got, expected, **tol)


def test_device_matches_cpu_reference(device):
    """The lean sampling on ``device`` against the plain-autograd one on the CPU (float32)."""
    cpu_inputs = random_inputs(2, 5, 2, 3, SHAPES, 3, torch.float32, "cpu")
    expected = outputs_and_grads(_ms_deform_attn_sample_reference, cpu_inputs, SHAPES)
    inputs = [t.detach().to(device).requires_grad_() for t in cpu_inputs]
    got = outputs_and_grads(ms_deform_attn_sample, inputs, SHAPES)
    for a, b in zip(got, expected):
        assert a.device.type == torch.device(device).type
        torch.testing.assert_close(a.cpu(), b, rtol=1e-4, atol=1e-5)


def test_initial_offsets_spread_heads_and_points():
    attn = MSDeformAttn(d_model=16, n_levels=2, n_heads=4, n_points=3)
    bias = attn.sampling_offsets.bias.view(4, 2, 3, 2)
    # Point k of every head lies k + 1 pixels away along the head's direction (L-inf norm).
    torch.testing.assert_close(bias.abs().amax(-1), torch.tensor([1.0, 2.0, 3.0]).expand(4, 2, 3))
    assert len({tuple(d) for d in bias[:, 0, 0].tolist()}) == 4
