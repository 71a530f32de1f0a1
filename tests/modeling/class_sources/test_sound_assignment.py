"""Sound per object: each second's tags shared out over the queries by what they look like."""

import pytest
import torch
import torch.nn.functional as F
from source_helpers import LABELS, OneHotTexts, Tagger, make_clip

from ovavss_d2.modeling.class_sources import AudioTagsSource
from ovavss_d2.modeling.class_sources.audio_tags import visual_distribution
from ovavss_d2.modeling.class_sources.sound_assignment import (
    assigned_sound_embeds,
    tag_assignment,
    visual_text_embeds,
)


def _two_source_clip():
    """Two queries, both present in both seconds; every second holds a bark (louder) and a
    violin: the mixture of a dog and a cello."""
    clip = make_clip([("dog",), ("cello",)], queries=2, frames=2)
    clip.audio_embeds = torch.tensor([[8.0, 8.0, 4.0, -8.0], [8.0, 8.0, 4.0, -8.0]])
    return clip


def _source(visual=None):
    return AudioTagsSource(
        Tagger(), LABELS, OneHotTexts(), top_k=3, logit_scale=10.0, visual=visual
    )


def test_each_of_two_masks_gets_its_own_tag():
    clip = _two_source_clip()
    # without the assignment both queries hear the mixture, where the bark is louder
    mixed = _source()(clip).probs
    assert (mixed.argmax(-1) == 0).all()
    # the first query looks like a dog, the second like a cello
    looks = torch.tensor([[0.9, 0.1], [0.1, 0.9]])
    probs = _source(visual=lambda c: looks)(clip).probs
    assert probs.argmax(-1).tolist() == [0, 1]
    assert probs[1, 1] > 0.9


def test_one_present_query_keeps_the_whole_sound():
    visual = F.normalize(torch.randn(3, 4), dim=-1)
    tags = F.normalize(torch.randn(2, 5, 4), dim=-1)
    present = torch.tensor([[True, False], [False, False], [False, True]])
    share = tag_assignment(visual, tags, present, scale=30.0)
    assert share.shape == (3, 2, 5)
    torch.testing.assert_close(share, torch.ones(3, 2, 5))  # alone, or absent: weight 1


def test_shares_over_present_queries_sum_to_one():
    visual = F.normalize(torch.randn(3, 4), dim=-1)
    tags = F.normalize(torch.randn(2, 5, 4), dim=-1)
    present = torch.tensor([[True, True], [True, False], [False, True]])
    share = tag_assignment(visual, tags, present, scale=10.0)
    total = (share * present[..., None]).sum(0)
    torch.testing.assert_close(total, torch.ones(2, 5))
    # scale 0 shares equally among the present queries
    even = tag_assignment(visual, tags, present, scale=0.0)
    torch.testing.assert_close(even[0, 0], torch.full((5,), 0.5))


def test_assigned_embeds_and_visual_positions():
    classes = torch.eye(3)
    v = visual_text_embeds(torch.tensor([[0.5, 0.5, 0.0]]), classes)
    torch.testing.assert_close(v, torch.tensor([[1.0, 1.0, 0.0]]) / 2**0.5)
    tags = torch.eye(3)[None, :2]  # (T=1, N=2, E=3)
    sound = assigned_sound_embeds(
        torch.tensor([[1.0, 1.0]]), tags, torch.tensor([[[1.0, 0.0]], [[0.0, 0.0]]])
    )
    torch.testing.assert_close(sound[0, 0], torch.tensor([1.0, 0.0, 0.0]))
    assert sound[1].abs().sum() == 0  # no share of any tag: no sound (logits 0, uniform)


def test_visual_distribution_looks_sources_up_at_call_time():
    sources = {}
    p_vis = visual_distribution(sources, ["stub"])
    clip = make_clip([("dog",), ("cello",)], queries=2)

    class Stub:
        def __call__(self, clip):
            from ovavss_d2.modeling.class_sources import ClassEvidence

            return ClassEvidence(probs=torch.tensor([[0.8, 0.2], [0.3, 0.7]]))

    sources["stub"] = Stub()
    torch.testing.assert_close(p_vis(clip), torch.tensor([[0.8, 0.2], [0.3, 0.7]]))


def test_from_config_needs_the_visual_sources(cfg):
    from source_helpers import TextEncoder

    context = {"audio_encoder": Tagger(), "text_encoder": TextEncoder()}
    cfg.MODEL.CLASS_SOURCES.NAMES = ["learned", "audio_tags"]
    cfg.MODEL.CLASS_SOURCES.AUDIO_TAGS.ASSIGN.VISUAL = "image_tags"
    with pytest.raises(ValueError, match="image_tags"):
        AudioTagsSource(cfg, context)
    cfg.MODEL.CLASS_SOURCES.AUDIO_TAGS.ASSIGN.VISUAL = "learned"
    assert AudioTagsSource(cfg, context).visual is not None
    cfg.MODEL.CLASS_SOURCES.AUDIO_TAGS.ASSIGN.VISUAL = "eyes"
    with pytest.raises(ValueError, match="ASSIGN.VISUAL"):
        AudioTagsSource(cfg, context)
