"""clip_visual: CLIP's image tower (a tiny random CLIP) on the query masks, as a class source."""

import pytest
import torch
from source_helpers import assert_distribution, make_clip

from ovavss_d2.modeling.class_sources import ClipVisualSource
from ovavss_d2.modeling.text_encoder import build_text_encoder


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
