"""AudioMaskedTransformerDecoder (alone and after the pixel decoder) on tiny CPU inputs."""

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec

from ovavss_d2.config import add_ovavss_config
from ovavss_d2.modeling.pixel_decoder import build_pixel_decoder
from ovavss_d2.modeling.transformer_decoder import (
    AudioMaskedTransformerDecoder,
    TemporalEmbedding,
    build_transformer_decoder,
)

AUDIO_DIM = 6
HEIGHT, WIDTH = 64, 96
KEYS = ("pred_objectness", "pred_embeds", "pred_masks")


def tiny_decoder(**kwargs) -> AudioMaskedTransformerDecoder:
    torch.manual_seed(0)
    args = dict(
        mask_dim=24,
        audio_dim=AUDIO_DIM,
        hidden_dim=32,
        num_queries=8,
        nheads=4,
        dim_feedforward=64,
        dec_layers=3,
        embed_dim=20,
    )
    args.update(kwargs)
    return AudioMaskedTransformerDecoder(16, **args)


def tiny_inputs(batch: int, num_frames: int, seed: int = 1):
    """Pixel-decoder outputs: 3 maps (stride 32, 16, 8), stride-4 mask features, audio."""
    g = torch.Generator().manual_seed(seed)
    n = batch * num_frames
    multi_scale = [torch.randn(n, 16, HEIGHT // s, WIDTH // s, generator=g) for s in (32, 16, 8)]
    mask_features = torch.randn(n, 24, HEIGHT // 4, WIDTH // 4, generator=g)
    return multi_scale, mask_features, torch.randn(batch, num_frames, AUDIO_DIM, generator=g)


def all_predictions(out):
    return out["aux_outputs"] + [{k: out[k] for k in KEYS}]


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("num_frames", [1, 5, 10])
def test_output_shapes(batch, num_frames):
    decoder = tiny_decoder()
    out = decoder(*tiny_inputs(batch, num_frames), num_frames)
    assert len(out["aux_outputs"]) == 3
    for prediction in all_predictions(out):
        assert set(prediction) == set(KEYS)
        assert prediction["pred_objectness"].shape == (batch, 8, 2)
        assert prediction["pred_embeds"].shape == (batch, 8, 20)
        assert prediction["pred_masks"].shape == (batch, 8, num_frames, HEIGHT // 4, WIDTH // 4)


def test_gradients_reach_every_parameter():
    decoder = tiny_decoder(dec_layers=4)  # 4 layers: every level and layer gets used
    multi_scale, mask_features, audio = tiny_inputs(2, 3)
    out = decoder(multi_scale, mask_features, audio, 3)
    loss = sum(
        p["pred_objectness"].square().mean()
        + p["pred_embeds"].square().mean()
        + p["pred_masks"].sigmoid().mean()
        for p in all_predictions(out)
    )
    loss.backward()
    for name, param in decoder.named_parameters():
        assert param.grad is not None, f"{name} gets no gradient"
        assert torch.isfinite(param.grad).all(), f"{name} has a non-finite gradient"


def test_batch_independence():
    """Clip 0 in a batch of 2 gives the same output as clip 0 alone (the reference mixes them)."""
    decoder = tiny_decoder().eval()
    multi_scale, mask_features, audio = tiny_inputs(2, 3)
    with torch.no_grad():
        both = decoder(multi_scale, mask_features, audio, 3)
        one = decoder([m[:3] for m in multi_scale], mask_features[:3], audio[:1], 3)
    for p_both, p_one in zip(all_predictions(both), all_predictions(one)):
        for key in KEYS:
            torch.testing.assert_close(p_both[key][:1], p_one[key], rtol=1e-4, atol=1e-4)


def test_audio_changes_the_masks():
    decoder = tiny_decoder().eval()
    multi_scale, mask_features, audio = tiny_inputs(1, 3)
    with torch.no_grad():
        out_a = decoder(multi_scale, mask_features, audio, 3)
        out_b = decoder(multi_scale, mask_features, torch.randn_like(audio), 3)
    assert (out_a["pred_masks"] - out_b["pred_masks"]).abs().max() > 1e-3
    assert (out_a["pred_objectness"] - out_b["pred_objectness"]).abs().max() > 1e-4


def test_empty_masks_attend_everywhere():
    """A threshold above 1 masks every pixel of every query: the guard then lets each query see
    everything, which equals a threshold of 0 (nothing masked)."""
    inputs = tiny_inputs(1, 2)
    with torch.no_grad():
        out_empty = tiny_decoder(mask_attn_threshold=1.5).eval()(*inputs, 2)
        out_full = tiny_decoder(mask_attn_threshold=0.0).eval()(*inputs, 2)
    assert torch.isfinite(out_empty["pred_masks"]).all()
    torch.testing.assert_close(out_empty["pred_masks"], out_full["pred_masks"])


def test_masked_attention_is_used():
    inputs = tiny_inputs(1, 2)
    with torch.no_grad():
        masked = tiny_decoder(mask_attn_threshold=0.5).eval()(*inputs, 2)
        unmasked = tiny_decoder(mask_attn_threshold=0.0).eval()(*inputs, 2)
    # Identical up to the first masked cross-attention, different after it.
    torch.testing.assert_close(
        masked["aux_outputs"][0]["pred_masks"], unmasked["aux_outputs"][0]["pred_masks"]
    )
    assert (masked["pred_masks"] - unmasked["pred_masks"]).abs().max() > 1e-4


def test_attention_mask_spans_the_clip_frames():
    """The key set of a query is the union of its T frames' pixels, frame-major like the memory:
    a query whose mask is on frame 1 only attends to frame 1's pixels."""
    decoder = tiny_decoder().eval()
    num_frames, h4, w4 = 2, 4, 6
    output = torch.randn(1, 8, 32)
    with torch.no_grad():
        embed = decoder.mask_embed(decoder.decoder_norm(output))[0, 0]  # query 0, (C_m,)
        direction = embed / embed.square().sum()  # <embed, direction> = 1
        mask_features = torch.empty(1, num_frames, 24, h4, w4)
        mask_features[:, 0] = -10 * direction[:, None, None]
        mask_features[:, 1] = 10 * direction[:, None, None]
        prediction, attn_mask = decoder._predict(output, mask_features, (2, 3))
    masks = prediction["pred_masks"][0, 0]  # (T, H4, W4)
    assert (masks[0] < 0).all() and (masks[1] > 0).all()
    assert attn_mask.shape == (4, 8, num_frames * 2 * 3)  # (B*h, Q, T*H_i*W_i)
    for head in range(4):
        assert attn_mask[head, 0, :6].all() and not attn_mask[head, 0, 6:].any()


@pytest.mark.parametrize("temporal_embed", ["learned", "none"])
def test_variants_run(temporal_embed):
    decoder = tiny_decoder(pre_norm=True, temporal_embed=temporal_embed, max_num_frames=4)
    out = decoder(*tiny_inputs(2, 4), 4)
    assert torch.isfinite(out["pred_masks"]).all()


def test_rejects_mismatched_inputs():
    decoder = tiny_decoder()
    multi_scale, mask_features, audio = tiny_inputs(1, 3)
    with pytest.raises(ValueError, match="does not match"):
        decoder(multi_scale, mask_features, audio, 2)
    with pytest.raises(ValueError, match="feature levels"):
        decoder(multi_scale[:2], mask_features, audio, 3)


def test_temporal_embedding():
    sine = TemporalEmbedding(8, "sine")(30, torch.device("cpu"), torch.float32)
    assert sine.shape == (30, 8) and len({tuple(row) for row in sine.tolist()}) == 30
    learned = TemporalEmbedding(8, "learned", max_frames=4)
    with pytest.raises(ValueError, match="MAX_NUM_FRAMES"):
        learned(5, torch.device("cpu"), torch.float32)
    assert not TemporalEmbedding(8, "none")(3, torch.device("cpu"), torch.float32).any()


def tiny_cfg():
    cfg = get_cfg()
    add_ovavss_config(cfg)
    cfg.MODEL.PIXEL_DECODER.CONV_DIM = 32
    cfg.MODEL.PIXEL_DECODER.MASK_DIM = 24
    cfg.MODEL.PIXEL_DECODER.NUM_ENCODER_LAYERS = 2
    cfg.MODEL.PIXEL_DECODER.NUM_HEADS = 4
    cfg.MODEL.PIXEL_DECODER.NUM_POINTS = 2
    cfg.MODEL.PIXEL_DECODER.DIM_FEEDFORWARD = 64
    cfg.MODEL.PIXEL_DECODER.AV_FUSION.NUM_HEADS = 4
    cfg.MODEL.TRANSFORMER_DECODER.HIDDEN_DIM = 32
    cfg.MODEL.TRANSFORMER_DECODER.NUM_QUERIES = 8
    cfg.MODEL.TRANSFORMER_DECODER.NHEADS = 4
    cfg.MODEL.TRANSFORMER_DECODER.DIM_FEEDFORWARD = 64
    cfg.MODEL.TRANSFORMER_DECODER.DEC_LAYERS = 3
    cfg.MODEL.TRANSFORMER_DECODER.EMBED_DIM = 20
    return cfg


def test_pixel_and_transformer_decoder_chain():
    """Both decoders built from a config: shapes and batch independence end to end."""
    cfg = tiny_cfg()
    shapes = {
        f"res{i}": ShapeSpec(channels=4 * i, stride=2**i) for i in (2, 3, 4, 5)
    }  # res2: stride 4 ... res5: stride 32
    torch.manual_seed(0)
    pixel_decoder = build_pixel_decoder(cfg, shapes, AUDIO_DIM).eval()
    decoder = build_transformer_decoder(
        cfg, pixel_decoder.conv_dim, pixel_decoder.mask_dim, AUDIO_DIM
    ).eval()
    assert isinstance(decoder, AudioMaskedTransformerDecoder)
    g = torch.Generator().manual_seed(2)
    batch, num_frames = 2, 5
    features = {
        name: torch.randn(
            batch * num_frames, s.channels, HEIGHT // s.stride, WIDTH // s.stride, generator=g
        )
        for name, s in shapes.items()
    }
    audio = torch.randn(batch, num_frames, AUDIO_DIM, generator=g)

    def run(features, audio):
        mask_features, multi_scale = pixel_decoder.forward_features(features, audio, num_frames)
        return decoder(multi_scale, mask_features, audio, num_frames)

    with torch.no_grad():
        both = run(features, audio)
        one = run({k: v[:num_frames] for k, v in features.items()}, audio[:1])
    assert both["pred_masks"].shape == (batch, 8, num_frames, HEIGHT // 4, WIDTH // 4)
    assert len(both["aux_outputs"]) == 3
    for key in KEYS:
        torch.testing.assert_close(both[key][:1], one[key], rtol=1e-4, atol=1e-4)


def test_per_frame_objectness_head_off_by_default():
    """The default decoder has no per-frame head: same parameters as before, no new output."""
    decoder = tiny_decoder()
    assert decoder.frame_objectness_head is None
    assert not any(n.startswith("frame_objectness_head") for n, _ in decoder.named_parameters())
    out = decoder(*tiny_inputs(1, 2), 2)
    assert "pred_frame_objectness" not in out


@pytest.mark.parametrize("batch,num_frames", [(1, 1), (2, 5)])
def test_per_frame_objectness_on_every_layer_with_gradients(batch, num_frames):
    decoder = tiny_decoder(frame_objectness=True)
    out = decoder(*tiny_inputs(batch, num_frames), num_frames)
    predictions = out["aux_outputs"] + [out]
    for prediction in predictions:
        assert prediction["pred_frame_objectness"].shape == (batch, 8, num_frames)
    sum(p["pred_frame_objectness"].square().mean() for p in predictions).backward()
    for name, param in decoder.frame_objectness_head.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_per_frame_objectness_is_decided_by_each_frames_audio():
    """Frames with the same audio get the same logit; another audio, another logit (the head
    sees no frame position)."""
    decoder = tiny_decoder(frame_objectness=True).eval()
    multi_scale, mask_features, audio = tiny_inputs(1, 4)
    audio[0, 2] = audio[0, 0]
    logits = decoder(multi_scale, mask_features, audio, 4)["pred_frame_objectness"][0]
    torch.testing.assert_close(logits[:, 2], logits[:, 0])
    assert (logits[:, 1] - logits[:, 0]).abs().max() > 1e-4
