"""clip_visual: CLIP's image tower (a tiny random CLIP) on the query masks, as a class source."""

import pytest
import torch
import torch.nn.functional as F
from source_helpers import assert_distribution, make_clip

from ovavss_d2.modeling.class_sources import ClipVisualSource
from ovavss_d2.modeling.class_sources.clip_visual import (
    CLIP_PIXEL_MEAN,
    CLIP_PIXEL_STD,
    CLIPVisualClassifier,
)
from ovavss_d2.modeling.class_sources.ensemble import embedding_logits
from ovavss_d2.modeling.text_encoder import build_text_encoder
from ovavss_d2.modeling.text_encoder.clip_loader import load_clip


@pytest.fixture
def clip_cfg(cfg, tiny_clip_vit):
    cfg.MODEL.TEXT_ENCODER.NAME = "CLIPTextEncoder"
    cfg.MODEL.TEXT_ENCODER.CLIP_MODEL = tiny_clip_vit
    return cfg


@pytest.mark.parametrize("mode", ["crop", "mask_pool"])
@pytest.mark.parametrize("num_classes", [1, 4])
def test_any_vocabulary_gives_a_distribution(clip_cfg, mode, num_classes):
    clip_cfg.MODEL.CLASS_SOURCES.CLIP_VISUAL.MODE = mode
    source = ClipVisualSource(clip_cfg, {"text_encoder": build_text_encoder(clip_cfg)})
    assert source.name == "clip_visual"
    vocab = [("dog",), ("owl",), ("not-a-word qwzx",), ("cello",)][:num_classes]
    clip = make_clip(vocab, queries=3, frames=2)
    ev = source(clip)
    assert_distribution(ev.probs, 3, num_classes)
    # what the classifier says, softmaxed
    logits, _ = source.classifier(clip.frames, clip.mask_probs(), clip.class_embeds)
    torch.testing.assert_close(ev.probs, logits.softmax(-1))


def test_a_query_present_nowhere_is_uniform(clip_cfg):
    source = ClipVisualSource(clip_cfg, {"text_encoder": build_text_encoder(clip_cfg)})
    clip = make_clip([("dog",), ("owl",)], queries=2)
    masks = clip.mask_probs().clone()
    masks[1] = 0.0
    clip.mask_probs = lambda: masks
    torch.testing.assert_close(source(clip).probs[1], torch.tensor([0.5, 0.5]))


def test_needs_an_image_tower(cfg):
    class NoTower:
        dim = 4

    with pytest.raises(ValueError, match="CLIP image tower"):
        ClipVisualSource(cfg, {"text_encoder": NoTower()})


# -- from test_clip_visual_classifier.py: CLIPVisualClassifier on tiny random CLIPs: crops,
# presence, frame averaging, mask pooling.


def _clip_input_to_pixels(x):
    mean = torch.tensor(CLIP_PIXEL_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_PIXEL_STD).view(1, 3, 1, 1)
    return (x * std + mean) * 255.0


@pytest.fixture
def scene():
    """Two 48x64 frames of constant colour; query 0 is a 16x8 box in both frames, query 1 only in
    frame 1, query 2 nowhere."""
    images = torch.empty(2, 3, 48, 64, dtype=torch.uint8)
    images[:, 0], images[:, 1], images[:, 2] = 200, 100, 50
    masks = torch.zeros(3, 2, 48, 64)
    masks[0, :, 8:24, 20:28] = 1.0
    masks[1, 1, 30:40, 40:60] = 0.9
    text = torch.nn.functional.normalize(
        torch.randn(4, 32, generator=torch.Generator().manual_seed(0)), dim=-1
    )
    return images, masks, text


def test_crop_mode(tiny_clip_vit, scene, monkeypatch):
    images, masks, text = scene
    model = load_clip(tiny_clip_vit)
    classifier = CLIPVisualClassifier(model, "crop")
    assert classifier.input_size == 32
    seen = []
    encode = model.encode_image

    def spy(x):
        seen.append(x.clone())
        return encode(x)

    monkeypatch.setattr(model, "encode_image", spy)
    logits, present = classifier(images, masks, text)
    assert present.tolist() == [[True, True], [False, True], [False, False]]
    assert logits.shape == (3, 4)
    crops = torch.cat(seen)
    assert crops.shape == (3, 3, 32, 32)  # one crop per present (query, frame)
    # Query 0: a 16x8 mask -> 16x16 square; the mask fills the middle half in x, black elsewhere.
    pixels = _clip_input_to_pixels(crops[:1])[0]
    torch.testing.assert_close(
        pixels[:, 4:28, 12:20],
        torch.tensor([200.0, 100.0, 50.0]).view(3, 1, 1).expand(3, 24, 8),
        atol=1.0,
        rtol=0,
    )
    assert pixels[:, :, :6].abs().max() < 1.0 and pixels[:, :, 26:].abs().max() < 1.0
    # Averaging over present frames only; a query present nowhere gets zeros.
    crop_logits = embedding_logits(encode(crops), text, 100.0)
    torch.testing.assert_close(logits[0], crop_logits[:2].mean(0), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(logits[1], crop_logits[2], rtol=1e-4, atol=1e-4)
    assert torch.equal(logits[2], torch.zeros(4))


def test_bgr_input_matches_rgb(tiny_clip_vit, scene):
    images, masks, text = scene
    model = load_clip(tiny_clip_vit)
    rgb, _ = CLIPVisualClassifier(model, "crop")(images, masks, text)
    bgr, _ = CLIPVisualClassifier(model, "crop", image_format="BGR")(images.flip(1), masks, text)
    torch.testing.assert_close(rgb, bgr)


@pytest.mark.parametrize("arch", ["vit", "rn"])
def test_mask_pool_mode(arch, tiny_clip_vit, tiny_clip_rn, scene):
    images, masks, text = scene
    model = load_clip(tiny_clip_vit if arch == "vit" else tiny_clip_rn)
    classifier = CLIPVisualClassifier(model, "mask_pool", crop_size=64)  # != model resolution
    dense = classifier.dense_features(images)
    grid = 64 // 16 if arch == "vit" else 64 // 32
    assert dense.shape == (2, 32, grid, grid)
    logits, present = classifier(images, masks[:, :, ::4, ::4], text)  # low-resolution masks
    assert logits.shape == (3, 4) and torch.isfinite(logits).all()
    assert present.tolist() == [[True, True], [False, True], [False, False]]


def test_build_from_config(cfg, tiny_clip_vit):
    class TextOnly:
        clip_model = None

    class WithCLIP:
        clip_model = load_clip(tiny_clip_vit)

    with pytest.raises(ValueError, match="CLIP image tower"):
        ClipVisualSource(cfg, {"text_encoder": TextOnly()})
    cfg.MODEL.CLASS_SOURCES.CLIP_VISUAL.MODE = "mask_pool"
    cfg.MODEL.CLASS_SOURCES.CLIP_VISUAL.LOGIT_SCALE = 0.0  # -> CLIP's learned scale
    classifier = ClipVisualSource(cfg, {"text_encoder": WithCLIP()}).classifier
    assert classifier.mode == "mask_pool"
    assert classifier.logit_scale == pytest.approx(WithCLIP.clip_model.logit_scale.exp().item())
    cfg.MODEL.CLASS_SOURCES.CLIP_VISUAL.MODE = "none"
    with pytest.raises(ValueError, match="mode must be one of"):
        ClipVisualSource(cfg, {"text_encoder": WithCLIP()})
    with pytest.raises(ValueError):
        CLIPVisualClassifier(WithCLIP.clip_model, "boxes")


# -- from test_clip_mask_pool_values.py: CLIP_VISUAL.MODE mask_pool against an independent
# computation on a tiny random ViT CLIP.
#
# The expected dense features come from CLIP's own forward: the input of the last block is caught
# with a hook during ``encode_image``, and the last block's value path is CLIP's own attention
# with a mask that lets each token attend only to itself (softmax weight 1 on itself: exactly the
# value path), then ``ln_post`` and ``proj``. Masks are constant on the 16 x 16 patches, so the
# pooled embedding is a weighted mean of the 4 patch features with weights read off the masks.


SCALE = 10.0


def _patch_features(model, images: torch.Tensor) -> torch.Tensor:
    """``(T, 4, E)`` value-path features of the 2 x 2 patches, patch order row-major."""
    visual = model.visual
    x = images.float() / 255.0
    x = (x - torch.tensor(CLIP_PIXEL_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_PIXEL_STD).view(
        1, 3, 1, 1
    )
    last = visual.transformer.resblocks[-1]
    caught = {}
    handle = last.register_forward_hook(lambda mod, inp, out: caught.update(x=inp[0]))
    try:
        model.encode_image(x)
    finally:
        handle.remove()
    tokens = caught["x"]  # (L = 1 + 4, T, W): the last block's input
    length = tokens.shape[0]
    only_self = torch.full((length, length), float("-inf")).fill_diagonal_(0.0)
    h = last.ln_1(tokens)
    v = last.attn(h, h, h, need_weights=False, attn_mask=only_self)[0]  # (L, T, W)
    return visual.ln_post(v[1:].permute(1, 0, 2)) @ visual.proj  # (T, 4, E)


def test_mask_pool_logits_match_independent_computation(tiny_clip_vit):
    model = load_clip(tiny_clip_vit)
    g = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (2, 3, 32, 32), generator=g, dtype=torch.uint8)
    text = F.normalize(torch.randn(3, 32, generator=g), dim=-1)
    # Mask weights per patch (top-left, top-right, bottom-left, bottom-right) of (query, frame).
    weights = torch.tensor(
        [
            [[1.0, 0.0, 0.0, 0.0], [0.9, 0.9, 0.0, 0.0]],  # query 0: present in both frames
            [[0.0, 0.0, 0.0, 0.0], [0.2, 0.6, 1.0, 0.8]],  # query 1: only in frame 1
            [[0.3, 0.3, 0.3, 0.3], [0.0, 0.0, 0.0, 0.0]],  # query 2: soft, below 0.5: absent
        ]
    )
    masks = weights.view(3, 2, 2, 2).repeat_interleave(16, 2).repeat_interleave(16, 3)

    classifier = CLIPVisualClassifier(model, "mask_pool", logit_scale=SCALE)
    logits, present = classifier(images, masks, text)

    with torch.no_grad():
        feats = _patch_features(model, images)  # (T, 4, E)
    expected = torch.zeros(3, 3)
    for q in range(3):
        frames = [t for t in range(2) if weights[q, t].max() > 0.5]
        for t in frames:
            pooled = (weights[q, t, :, None] * feats[t]).sum(0) / (weights[q, t].sum() + 1e-6)
            expected[q] += SCALE * F.normalize(pooled, dim=0) @ text.t() / len(frames)
    assert present.tolist() == [[True, True], [False, True], [False, False]]
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)
    assert logits[0].abs().sum() > 0 and torch.equal(logits[2], torch.zeros(3))
