"""learned: the trained embedding classifier's class distribution and background probability."""

import math

import pytest
import torch
from source_helpers import assert_distribution, make_clip
from torch import nn

from ovavss_d2.modeling.class_sources import (
    EmbeddingClassifier,
    LearnedSource,
    learned_distribution,
)

LOG = math.log


def test_distribution_and_background_by_hand():
    # class probabilities 0.5, 0.25, 0.25 and p_bg 0.25 (background logit log(1/3))
    logits = torch.tensor([[LOG(0.5), LOG(0.25), LOG(0.25), LOG(1 / 3)]])
    ev = learned_distribution(logits, torch.tensor([True, True, False]))
    torch.testing.assert_close(ev.probs, torch.tensor([[0.5, 0.25, 0.25]]))
    torch.testing.assert_close(ev.p_background, torch.tensor([0.25]))
    # penalty log 2 on the base classes halves them: (0.25, 0.125, 0.25) / 0.625
    ev = learned_distribution(logits, torch.tensor([True, True, False]), LOG(2.0))
    torch.testing.assert_close(ev.probs, torch.tensor([[0.4, 0.2, 0.4]]))
    torch.testing.assert_close(ev.p_background, torch.tensor([0.25]))  # penalty: classes only


@pytest.mark.parametrize(
    "vocab",
    [[("dog",)], [("dog",), ("owl",), ("xylophone-ish thing",), ("emergency car", "ambulance")]],
)
def test_any_vocabulary_gives_a_distribution(vocab):
    torch.manual_seed(0)
    classifier = EmbeddingClassifier(in_dim=8, embed_dim=32)
    source = LearnedSource(classifier, base_logit_penalty=1.5)
    ev = source(make_clip(vocab, queries=5))
    assert_distribution(ev.probs, 5, len(vocab))
    assert ev.p_background.shape == (5,)
    assert ((ev.p_background >= 0) & (ev.p_background <= 1)).all()


def test_from_config(cfg):
    cfg.MODEL.CLASS_SOURCES.LEARNED.BASE_LOGIT_PENALTY = 0.7
    head = nn.Linear(2, 2)
    source = LearnedSource(cfg, {"embedding_classifier": head})
    assert source.classifier is head and source.base_logit_penalty == 0.7
    with pytest.raises(ValueError, match="CLASS_WEIGHT > 0"):
        LearnedSource(cfg, {"embedding_classifier": None})


def test_embedding_classifier_from_config(cfg):
    cfg.MODEL.TRANSFORMER_DECODER.EMBED_DIM = 8
    cfg.MODEL.CLASS_SOURCES.LEARNED.HIDDEN_DIM = 16
    cfg.MODEL.CLASS_SOURCES.LEARNED.TEMPERATURE = 0.5
    cfg.MODEL.CLASS_SOURCES.LEARNED.LEARN_TEMPERATURE = False
    head = EmbeddingClassifier(cfg, 32)
    assert head.proj[0].in_features == 8 and head.proj[0].out_features == 16
    assert head.embed_dim == 32 and not isinstance(head.logit_scale, nn.Parameter)
    torch.testing.assert_close(head.logit_scale, torch.tensor(math.log(2.0)))
