"""CLIPVisualClassifier on tiny random CLIPs: crops, presence, frame averaging, mask pooling."""

import pytest
import torch

from ovavss_d2.modeling.class_sources import ClipVisualSource
from ovavss_d2.modeling.class_sources.clip_visual import (
    CLIP_PIXEL_MEAN,
    CLIP_PIXEL_STD,
    CLIPVisualClassifier,
)
from ovavss_d2.modeling.class_sources.ensemble import embedding_logits
from ovavss_d2.modeling.text_encoder.clip_loader import load_clip


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
