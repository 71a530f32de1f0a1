"""AVMSDeformAttnPixelDecoder (with and without AudioVisualFusion) on tiny CPU inputs."""

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec

from ovavss_d2.config import add_ovavss_config
from ovavss_d2.modeling.pixel_decoder import (
    AudioVisualFusion,
    AVMSDeformAttnPixelDecoder,
    build_pixel_decoder,
)

SHAPES = {
    "res2": ShapeSpec(channels=8, stride=4),
    "res3": ShapeSpec(channels=12, stride=8),
    "res4": ShapeSpec(channels=16, stride=16),
    "res5": ShapeSpec(channels=20, stride=32),
}
AUDIO_DIM = 6
HEIGHT, WIDTH = 64, 96


def tiny_decoder(audio_context: str = "clip", fusion: bool = True) -> AVMSDeformAttnPixelDecoder:
    torch.manual_seed(0)
    av_fusion = None
    if fusion:
        av_fusion = AudioVisualFusion(32, AUDIO_DIM, num_heads=4, audio_context=audio_context)
    return AVMSDeformAttnPixelDecoder(
        SHAPES,
        transformer_in_features=["res3", "res4", "res5"],
        conv_dim=32,
        mask_dim=24,
        num_encoder_layers=2,
        num_heads=4,
        num_points=2,
        dim_feedforward=64,
        av_fusion=av_fusion,
    )


def tiny_inputs(batch: int, num_frames: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    features = {
        name: torch.randn(
            batch * num_frames, s.channels, HEIGHT // s.stride, WIDTH // s.stride, generator=g
        )
        for name, s in SHAPES.items()
    }
    return features, torch.randn(batch, num_frames, AUDIO_DIM, generator=g)


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("num_frames", [1, 5, 10])
def test_output_shapes(batch, num_frames):
    decoder = tiny_decoder()
    features, audio = tiny_inputs(batch, num_frames)
    mask_features, multi_scale = decoder.forward_features(features, audio, num_frames)
    n = batch * num_frames
    assert mask_features.shape == (n, 24, HEIGHT // 4, WIDTH // 4)
    assert [tuple(m.shape) for m in multi_scale] == [
        (n, 32, HEIGHT // s, WIDTH // s) for s in (32, 16, 8)
    ]


def test_build_from_config():
    cfg = get_cfg()
    add_ovavss_config(cfg)
    cfg.MODEL.PIXEL_DECODER.CONV_DIM = 32
    cfg.MODEL.PIXEL_DECODER.MASK_DIM = 16
    cfg.MODEL.PIXEL_DECODER.NUM_ENCODER_LAYERS = 1
    cfg.MODEL.PIXEL_DECODER.AV_FUSION.NUM_HEADS = 4
    extra = {"stem": ShapeSpec(channels=3, stride=2)}  # not in IN_FEATURES: ignored
    decoder = build_pixel_decoder(cfg, {**SHAPES, **extra}, AUDIO_DIM)
    assert (decoder.conv_dim, decoder.mask_dim) == (32, 16)
    assert decoder.transformer_in_features == ["res5", "res4", "res3"]
    assert decoder.fpn_features == ["res2"]
    torch.testing.assert_close(
        decoder.av_fusion.gamma_pixels, torch.full((32,), 1 / 6), rtol=0, atol=1e-7
    )
    features, audio = tiny_inputs(1, 2)
    mask_features, _ = decoder(features, audio, 2)
    assert mask_features.shape == (2, 16, HEIGHT // 4, WIDTH // 4)


def test_gradients_reach_every_parameter():
    decoder = tiny_decoder()
    features, audio = tiny_inputs(2, 3)
    audio.requires_grad_(True)
    mask_features, multi_scale = decoder.forward_features(features, audio, 3)
    loss = mask_features.square().mean() + sum(m.square().mean() for m in multi_scale)
    loss.backward()
    for name, param in decoder.named_parameters():
        assert param.grad is not None, f"{name} gets no gradient"
        assert torch.isfinite(param.grad).all(), f"{name} has a non-finite gradient"
    assert audio.grad.abs().sum() > 0


@pytest.mark.parametrize("audio_context", ["clip", "frame"])
def test_batch_independence(audio_context):
    """Clip 0 in a batch of 2 gives the same output as clip 0 alone."""
    decoder = tiny_decoder(audio_context).eval()
    features, audio = tiny_inputs(2, 4)
    with torch.no_grad():
        mask_both, multi_both = decoder.forward_features(features, audio, 4)
        first = {k: v[:4] for k, v in features.items()}
        mask_one, multi_one = decoder.forward_features(first, audio[:1], 4)
    torch.testing.assert_close(mask_both[:4], mask_one, rtol=1e-4, atol=1e-5)
    for both, one in zip(multi_both, multi_one):
        torch.testing.assert_close(both[:4], one, rtol=1e-4, atol=1e-5)


def test_audio_changes_the_output():
    decoder = tiny_decoder().eval()
    features, audio = tiny_inputs(1, 3)
    with torch.no_grad():
        mask_a, _ = decoder.forward_features(features, audio, 3)
        mask_b, _ = decoder.forward_features(features, torch.randn_like(audio), 3)
    assert (mask_a - mask_b).abs().max() > 1e-3


def test_without_fusion_audio_is_ignored():
    decoder = tiny_decoder(fusion=False).eval()
    features, audio = tiny_inputs(1, 2)
    with torch.no_grad():
        mask_a, _ = decoder.forward_features(features, audio, 2)
        mask_b, _ = decoder.forward_features(features, torch.randn_like(audio), 2)
    torch.testing.assert_close(mask_a, mask_b)


def _train_step(decoder: AVMSDeformAttnPixelDecoder, features, audio, num_frames: int):
    """Outputs, gradients (features, audio, every parameter) and the elements autograd keeps for
    backward outside recomputed regions, of one training step."""
    saved = [0]

    def pack(t):
        saved[0] += t.numel()
        return t

    inputs = [*features.values(), audio]
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        mask_features, multi_scale = decoder.forward_features(features, audio, num_frames)
    loss = mask_features.square().mean() + sum(m.square().mean() for m in multi_scale)
    grads = torch.autograd.grad(loss, inputs + list(decoder.parameters()))
    return [mask_features, *multi_scale, *grads], saved[0]


def test_recomputed_encoder_layers_train_the_same():
    """RECOMPUTE_ENCODER_LAYERS: the same outputs and gradients, less kept for backward."""
    decoder = tiny_decoder().train()
    features, audio = tiny_inputs(2, 3)
    features = {k: v.requires_grad_() for k, v in features.items()}
    audio.requires_grad_()
    kept, kept_saved = _train_step(decoder, features, audio, 3)
    decoder.recompute_encoder_layers = True
    recomputed, recomputed_saved = _train_step(decoder, features, audio, 3)
    for a, b in zip(recomputed, kept):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert recomputed_saved < 0.8 * kept_saved
