"""audio_tags: the clip's sounds named through the audio encoder's label names."""

import math

import pytest
import torch
from source_helpers import LABELS, OneHotTexts, Tagger, TextEncoder, assert_distribution, make_clip
from torch import nn

from ovavss_d2.modeling.class_sources import AudioTagsSource, ClipQueries, audio_label_names
from ovavss_d2.modeling.class_sources.audio_tags import (
    clip_distribution,
    tag_logits,
    tag_scores,
    tags_in_text_space,
)


def _source(top_k=2):
    return AudioTagsSource(Tagger(), LABELS, OneHotTexts(), top_k=top_k, logit_scale=10.0)


def test_label_names():
    assert audio_label_names(Tagger()) == LABELS
    assert audio_label_names(nn.Linear(2, 2)) is None


def test_distribution_follows_the_loudest_sound():
    source = _source()
    # Two seconds of barking, strong: labels Dog and Bark on, the rest off.
    clip = make_clip([("cello",), ("dog",)], queries=3)
    clip.audio_embeds = torch.tensor([[8.0, 8.0, -8.0, -8.0], [8.0, 6.0, -8.0, -8.0]])  # (T, J)
    ev = source(clip)
    assert_distribution(ev.probs, 3, 2)
    assert (ev.probs[:, 1] > 0.99).all()  # dog, the same for every query
    assert ev.speaks is None and ev.p_background is None
    # A violin sound names the novel "cello" through the shared text axis.
    clip = make_clip([("dog",), ("cello",)], queries=2, frames=1)
    clip.audio_embeds = torch.tensor([[-8.0, -8.0, 8.0, -8.0]])
    assert (source(clip).probs[:, 1] > 0.99).all()


def test_any_vocabulary_gives_a_distribution():
    """Names no tag is near ("submarine", "piano": axis 3) still give a valid distribution."""
    for vocab in ([("submarine",)], [("piano",), ("submarine",), ("dog",), ("engine",)]):
        clip = make_clip(vocab, queries=4, frames=3)
        assert_distribution(_source()(clip).probs, 4, len(vocab))
    # Only unknown names: their cosines with the sound are all 0 -> exactly uniform.
    clip = make_clip([("piano",), ("submarine",)], queries=2)
    torch.testing.assert_close(_source()(clip).probs, torch.full((2, 2), 0.5))


def test_top_k_drops_weak_labels():
    source = _source(top_k=1)
    embeds = torch.tensor([[3.0, -8.0, 2.9, -8.0]])  # dog slightly ahead of violin
    logits = source.logits(embeds, [("dog",), ("violin",)])
    assert logits.shape == (1, 2)
    assert logits[0, 0] == 10.0 and logits[0, 1] == 0.0


def test_tagging_maths_by_hand():
    head = Tagger().classifier
    scores = tag_scores(head, torch.tensor([[0.0, math.log(3.0), -50.0, -50.0]]), top_k=2)
    torch.testing.assert_close(scores, torch.tensor([[0.5, 0.75, 0.0, 0.0]]), atol=1e-6, rtol=0)
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])  # (J=4, E=2)
    sound = tags_in_text_space(scores, labels)  # (0.5, 0.75) normalised
    torch.testing.assert_close(sound, torch.tensor([[0.5, 0.75]]) / math.hypot(0.5, 0.75))
    logits = tag_logits(sound, torch.tensor([[1.0, 0.0], [0.0, 1.0]]), 2.0)
    torch.testing.assert_close(logits, 2 * sound)
    # clip mean of two seconds' logits, then softmax: mean (1, 0) -> (e/(e+1), 1/(e+1))
    p = clip_distribution(torch.tensor([[2.0, 0.0], [0.0, 0.0]]))
    torch.testing.assert_close(p, torch.tensor([math.e, 1.0]) / (math.e + 1))


def test_from_config(cfg):
    cfg.MODEL.CLASS_SOURCES.AUDIO_TAGS.TOP_K = 3
    cfg.MODEL.CLASS_SOURCES.AUDIO_TAGS.LOGIT_SCALE = 7.0
    context = {"audio_encoder": Tagger(), "text_encoder": TextEncoder()}
    source = AudioTagsSource(cfg, context)
    assert (source.top_k, source.logit_scale, source.name) == (3, 7.0, "audio_tags")
    assert source.text_classifier.templates == ("{}",)  # AUDIO_TAGS.TEMPLATES "none"
    with pytest.raises(ValueError, match="needs an audio encoder with a tagging head"):
        AudioTagsSource(cfg, {"audio_encoder": nn.Linear(2, 2), "text_encoder": None})


# -- from test_audio_tags_filters.py: audio_tags with the sound-tag filters: suppressed tags and
# per-query seconds, by hand.


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
