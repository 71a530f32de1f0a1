"""Plain-PyTorch multi-scale deformable attention against a naive bilinear-sampling reference."""

import math
import unittest

import torch

from ovavss_d2.modeling.pixel_decoder.msdeform_attn import MSDeformAttn, ms_deform_attn_sample


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
    """Loop version of ``ms_deform_attn_sample`` (same arguments and result)."""
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


class TestMSDeformAttn(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        self.spatial_shapes = [(2, 3), (4, 5), (3, 7)]  # non-square, non-nested sizes
        self.num_tokens = sum(h * w for h, w in self.spatial_shapes)

    def test_sampling_matches_naive_reference(self):
        n, num_queries, num_heads, head_dim, num_points = 2, 5, 2, 3, 3
        value = torch.randn(n, self.num_tokens, num_heads, head_dim, dtype=torch.float64)
        # Include locations outside [0, 1] to exercise the zero padding.
        locations = torch.rand(n, num_queries, num_heads, 3, num_points, 2, dtype=torch.float64)
        locations = locations * 1.4 - 0.2
        weights = torch.rand(n, num_queries, num_heads, 3, num_points, dtype=torch.float64)
        expected = naive_ms_deform_attn(value, self.spatial_shapes, locations, weights)
        actual = ms_deform_attn_sample(value, self.spatial_shapes, locations, weights)
        self.assertEqual(actual.shape, (n, num_queries, num_heads * head_dim))
        torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-10)

    def test_sampling_at_pixel_centre_reads_the_pixel(self):
        value = torch.arange(self.num_tokens, dtype=torch.float64).view(1, -1, 1, 1)
        h, w = self.spatial_shapes[1]
        i, j = 2, 3
        locations = torch.zeros(1, 1, 1, 3, 1, 2, dtype=torch.float64)
        locations[..., 1, 0, :] = torch.tensor([(j + 0.5) / w, (i + 0.5) / h])
        weights = torch.zeros(1, 1, 1, 3, 1, dtype=torch.float64)
        weights[..., 1, 0] = 1.0
        out = ms_deform_attn_sample(value, self.spatial_shapes, locations, weights)
        self.assertAlmostEqual(out.item(), 6 + i * w + j, places=5)  # level 1 starts at 2 * 3

    def test_gradcheck(self):
        shapes = [(2, 3), (3, 2)]
        value = torch.randn(1, 12, 2, 2, dtype=torch.float64, requires_grad=True)
        # Keep locations away from pixel-grid lines, where bilinear sampling is not differentiable.
        locations = (torch.rand(1, 3, 2, 2, 2, 2, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()
        weights = torch.rand(1, 3, 2, 2, 2, dtype=torch.float64, requires_grad=True)
        self.assertTrue(
            torch.autograd.gradcheck(
                lambda v, loc, wt: ms_deform_attn_sample(v, shapes, loc, wt),
                (value, locations, weights),
            )
        )

    def test_module_matches_naive_reference(self):
        attn = MSDeformAttn(d_model=8, n_levels=3, n_heads=2, n_points=2).double()
        # Random offset and weight projections, so the query really moves the samples.
        for layer in (attn.sampling_offsets, attn.attention_weights):
            torch.nn.init.normal_(layer.weight, std=0.5)
        n, num_queries = 2, 4
        query = torch.randn(n, num_queries, 8, dtype=torch.float64)
        value = torch.randn(n, self.num_tokens, 8, dtype=torch.float64)
        reference = torch.rand(n, num_queries, 3, 2, dtype=torch.float64)
        out = attn(query, reference, value, self.spatial_shapes)

        offsets = attn.sampling_offsets(query).view(n, num_queries, 2, 3, 2, 2)
        weights = attn.attention_weights(query).view(n, num_queries, 2, 6).softmax(-1)
        locations = torch.empty_like(offsets)
        for lvl, (h, w) in enumerate(self.spatial_shapes):
            locations[:, :, :, lvl, :, 0] = reference[:, :, None, lvl, None, 0] + (
                offsets[:, :, :, lvl, :, 0] / w
            )
            locations[:, :, :, lvl, :, 1] = reference[:, :, None, lvl, None, 1] + (
                offsets[:, :, :, lvl, :, 1] / h
            )
        projected = attn.value_proj(value).view(n, self.num_tokens, 2, 4)
        expected = naive_ms_deform_attn(
            projected, self.spatial_shapes, locations, weights.view(n, num_queries, 2, 3, 2)
        )
        torch.testing.assert_close(out, attn.output_proj(expected), rtol=1e-10, atol=1e-10)

    def test_initial_offsets_spread_heads_and_points(self):
        attn = MSDeformAttn(d_model=16, n_levels=2, n_heads=4, n_points=3)
        bias = attn.sampling_offsets.bias.view(4, 2, 3, 2)
        # Point k of every head lies k + 1 pixels away along the head's direction (L-inf norm).
        torch.testing.assert_close(
            bias.abs().amax(-1), torch.tensor([1.0, 2.0, 3.0]).expand(4, 2, 3)
        )
        self.assertEqual(len({tuple(d) for d in bias[:, 0, 0].tolist()}), 4)

    @unittest.skipUnless(torch.cuda.is_available(), "needs a GPU")
    def test_cpu_and_gpu_agree(self):
        attn = MSDeformAttn(d_model=8, n_levels=3, n_heads=2, n_points=2)
        query = torch.randn(2, 4, 8)
        value = torch.randn(2, self.num_tokens, 8)
        reference = torch.rand(2, 4, 3, 2)
        cpu = attn(query, reference, value, self.spatial_shapes)
        gpu = attn.cuda()(query.cuda(), reference.cuda(), value.cuda(), self.spatial_shapes)
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-5)


if __name__ == "__main__":
    unittest.main()
