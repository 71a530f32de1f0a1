"""audio_tags with the sound-tag filters: suppressed tags and per-query seconds, by hand."""

import pytest
import torch
from source_helpers import LABELS, OneHotTexts, Tagger, TextEncoder, assert_distribution

from ovavss_d2.modeling.class_sources import AudioTagsSource, ClipQueries


def _clip(audio_embeds, masks, vocabulary):
    q, t = masks.shape[:2]
    return ClipQueries(
        pred_embeds=torch.zeros(q, 8),
        pred_objectness=torch.zeros(q, 2),
        mask_probs=lambda: masks,
        frames=torch.zeros(t, 3, *masks.shape[-2:], dtype=torch.uint8),
        audio_embeds=audio_embeds,
        vocabulary=vocabulary,
        class_embeds=torch.zeros(len(vocabulary), 4),
        is_base=torch.ones(len(vocabulary), dtype=torch.bool),
    )


# Second 0: a bark (Dog, Bark); second 1: a violin under a loud "Engine" (a tag treated as noise).
AUDIO = torch.tensor([[8.0, 8.0, -8.0, -8.0], [-8.0, -8.0, 2.0, 8.0]])  # (T=2, J=4) label logits
VOCAB = [("dog",), ("violin",), ("engine",)]


def test_defaults_keep_todays_clip_mean():
    masks = torch.zeros(2, 2, 2, 2)
    masks[0, 0], masks[1, 1] = 1.0, 1.0  # query 0 in second 0, query 1 in second 1
    source = AudioTagsSource(Tagger(), LABELS, OneHotTexts(), top_k=1, logit_scale=10.0)
    ev = source(_clip(AUDIO, masks, VOCAB))
    assert torch.equal(ev.probs[0], ev.probs[1])  # one clip distribution for every query
    # top-1 tags: Dog (second 0) and Engine (second 1) -> logits (10, 0, 0) and (0, 0, 10)
    expected = torch.tensor([5.0, 0.0, 5.0]).softmax(-1)
    torch.testing.assert_close(ev.probs[0], expected)


def test_suppression_and_query_seconds_by_hand():
    masks = torch.zeros(2, 2, 2, 2)
    masks[0, 0], masks[1, 1] = 1.0, 1.0
    keep = torch.tensor([True, True, True, False])  # "Engine" names no object here
    source = AudioTagsSource(Tagger(), LABELS, OneHotTexts(), top_k=1, logit_scale=10.0, keep=keep)
    p = source(_clip(AUDIO, masks, VOCAB)).probs
    # Engine out: second 1's top tag is Violin -> clip logits mean of (10,0,0) and (0,10,0)
    torch.testing.assert_close(p[0], torch.tensor([5.0, 5.0, 0.0]).softmax(-1))
    source.seconds = "query_seconds"
    p = source(_clip(AUDIO, masks, VOCAB)).probs
    assert_distribution(p, 2, 3)
    torch.testing.assert_close(p[0], torch.tensor([10.0, 0.0, 0.0]).softmax(-1))  # the bark
    torch.testing.assert_close(p[1], torch.tensor([0.0, 10.0, 0.0]).softmax(-1))  # the violin


def test_from_config_reads_the_filter_keys(cfg):
    cfg.MODEL.CLASS_SOURCES.AUDIO_TAGS.SECONDS = "query_seconds"
    cfg.MODEL.CLASS_SOURCES.AUDIO_TAGS.SECOND_WEIGHTS = "max"
    context = {"audio_encoder": Tagger(), "text_encoder": TextEncoder()}
    source = AudioTagsSource(cfg, context)
    assert source.keep is None and source.seconds == "query_seconds"
    assert source.second_weights == "max"
    cfg.MODEL.CLASS_SOURCES.AUDIO_TAGS.SUPPRESS_TAGS = "default"  # YAMNet's names, not these four
    with pytest.raises(ValueError, match="audioset_non_object_tags.txt"):
        AudioTagsSource(cfg, context)
    cfg.MODEL.CLASS_SOURCES.AUDIO_TAGS.SUPPRESS_TAGS = ""
    cfg.MODEL.CLASS_SOURCES.AUDIO_TAGS.SECONDS = "per_query"
    with pytest.raises(ValueError, match="clip_mean"):
        AudioTagsSource(cfg, context)
