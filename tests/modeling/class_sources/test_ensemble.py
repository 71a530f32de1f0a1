"""combine_evidence / foreground_probability: the flat weighted geometric ensemble of sources."""

import math

import pytest
import torch

from ovavss_d2.modeling.class_sources import (
    ClassEvidence,
    SourceWeights,
    combine_evidence,
    foreground_probability,
)
from ovavss_d2.modeling.class_sources.ensemble import (
    embedding_logits,
    max_over_synonyms,
    objectness_from_logits,
)

IS_BASE = torch.tensor([True, True, False])  # 2 base classes, 1 novel
P_A = torch.tensor([[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]])
P_B = torch.tensor([[0.25, 0.5, 0.25], [0.5, 0.25, 0.25]])
P_C = torch.tensor([[0.1, 0.3, 0.6], [0.6, 0.3, 0.1]])
WEIGHTS = {
    "a": SourceWeights(1.0, 0.5),
    "b": SourceWeights(0.5, 2.0),
    "c": SourceWeights(0.25, 1.5),
}


def _evidence():
    return {"a": ClassEvidence(P_A), "b": ClassEvidence(P_B), "c": ClassEvidence(P_C)}


def _per_class(w: SourceWeights) -> torch.Tensor:
    return torch.tensor([w.base, w.base, w.novel])


@pytest.mark.parametrize("removed", ["a", "b", "c"])
def test_removing_a_source_changes_only_its_own_factor(removed):
    full, _ = combine_evidence(_evidence(), WEIGHTS, IS_BASE)
    rest = {k: v for k, v in _evidence().items() if k != removed}
    partial, p = combine_evidence(rest, WEIGHTS, IS_BASE)
    own = _evidence()[removed].probs.log() * _per_class(WEIGHTS[removed])
    torch.testing.assert_close(full - partial, own)
    torch.testing.assert_close(p, partial.softmax(-1))


def test_silent_classes_get_the_uniform_factor():
    speaks = torch.tensor([True, False, True])
    evidence = {"a": ClassEvidence(P_A), "b": ClassEvidence(P_B, speaks=speaks)}
    log_scores, _ = combine_evidence(evidence, WEIGHTS, IS_BASE)
    log_b = P_B.log().clone()
    log_b[:, 1] = math.log(1 / 3)
    expected = P_A.log() * _per_class(WEIGHTS["a"]) + log_b * _per_class(WEIGHTS["b"])
    torch.testing.assert_close(log_scores, expected)
    # a source silent about every class adds w(k) * log(1/K), whatever its probabilities say
    mute = {"a": ClassEvidence(P_A), "b": ClassEvidence(P_B, speaks=torch.zeros(3, dtype=bool))}
    alone = {"a": ClassEvidence(P_A)}
    shift = (
        combine_evidence(mute, WEIGHTS, IS_BASE)[0] - combine_evidence(alone, WEIGHTS, IS_BASE)[0]
    )
    torch.testing.assert_close(shift, (_per_class(WEIGHTS["b"]) * math.log(1 / 3)).expand(2, 3))


def test_per_frame_evidence_broadcasts():
    per_frame = torch.stack([P_B, P_C, P_B], dim=1)  # (Q=2, T=3, K=3)
    evidence = {"a": ClassEvidence(P_A), "b": ClassEvidence(per_frame)}
    log_scores, p = combine_evidence(evidence, WEIGHTS, IS_BASE)
    assert log_scores.shape == p.shape == (2, 3, 3)
    for t, frame in enumerate([P_B, P_C, P_B]):
        single = {"a": ClassEvidence(P_A), "b": ClassEvidence(frame)}
        torch.testing.assert_close(log_scores[:, t], combine_evidence(single, WEIGHTS, IS_BASE)[0])
    torch.testing.assert_close(p.sum(-1), torch.ones(2, 3))


def test_hand_computed_two_sources():
    """Query 0: a = (0.5, 0.25, 0.25) with exponents (1, 1, 0.5), b = (0.25, 0.5, 0.25) with
    (0.5, 0.5, 2): cat 0.5 * 0.25**0.5, dog 0.25 * 0.5**0.5, owl 0.25**0.5 * 0.25**2."""
    evidence = {"a": ClassEvidence(P_A), "b": ClassEvidence(P_B)}
    _, p = combine_evidence(evidence, WEIGHTS, IS_BASE)
    s = torch.tensor([0.25, 0.25 * 0.5**0.5, 0.5 * 0.0625])
    torch.testing.assert_close(p[0], s / s.sum())


def test_weights_and_shapes_are_checked():
    with pytest.raises(ValueError, match=">= 0"):
        SourceWeights(-0.1, 1.0)
    with pytest.raises(ValueError, match=">= 0"):
        SourceWeights(1.0, -1.0)
    with pytest.raises(KeyError, match=r"no ensemble weights for class sources \['c'\]"):
        combine_evidence(_evidence(), {"a": WEIGHTS["a"], "b": WEIGHTS["b"]}, IS_BASE)
    with pytest.raises(ValueError, match="gave 3 classes, the vocabulary has 2"):
        combine_evidence({"a": ClassEvidence(P_A)}, WEIGHTS, IS_BASE[:2])
    with pytest.raises(ValueError, match="at least one class source"):
        combine_evidence({}, WEIGHTS, IS_BASE)
    w = SourceWeights(0.25, 3)
    assert (w.base, w.novel) == (0.25, 3.0) and isinstance(w.novel, float)


def test_foreground_probability_by_hand():
    p_obj = torch.tensor([0.64, 0.25])
    evidence = {
        "a": ClassEvidence(P_A, p_background=torch.tensor([0.25, 0.5])),
        "b": ClassEvidence(P_B),
    }
    # (1 - p_bg) ** 2 * p_obj ** 0.5
    expected = torch.tensor([0.75**2 * 0.8, 0.5**2 * 0.5])
    torch.testing.assert_close(foreground_probability(p_obj, evidence, 0.5, 2.0, 2), expected)
    torch.testing.assert_close(foreground_probability(None, evidence, 0.5, 0.0, 2), torch.ones(2))


def test_base_bias_lowers_only_base_log_scores_by_its_value():
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    is_base = torch.tensor([True, True, False])
    evidence = {"a": ClassEvidence(probs)}
    weights = {"a": SourceWeights(1.0, 1.0)}
    plain, _ = combine_evidence(evidence, weights, is_base)
    biased, p_cls = combine_evidence(evidence, weights, is_base, base_bias=0.7)
    assert torch.allclose(plain - biased, torch.tensor([0.7, 0.7, 0.0]).expand(2, 3))
    # one source at weight 1: softmax(log p - 0.7 * base) by hand for the first query
    by_hand = torch.tensor([0.5 * math.exp(-0.7), 0.3 * math.exp(-0.7), 0.2])
    assert torch.allclose(p_cls[0], by_hand / by_hand.sum())


# -- from test_ensemble_functions.py: The shared functions of class_sources/ensemble.py on tiny
# hand-computed tensors.


def test_embedding_logits_and_max_over_synonyms():
    text = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[-1.0, 0.0], [0.0, 0.0]]])  # (K=2, S=2, E=2)
    valid = torch.tensor([[True, True], [True, False]])
    emb = torch.tensor([[0.0, 2.0]])  # normalised to (0, 1)
    per_syn = embedding_logits(emb, text, logit_scale=10.0)  # (1, 2, 2)
    torch.testing.assert_close(per_syn, torch.tensor([[[0.0, 10.0], [0.0, 0.0]]]))
    torch.testing.assert_close(max_over_synonyms(per_syn, valid), torch.tensor([[10.0, 0.0]]))
    # the padding synonym of class 1 never wins, even with a higher logit
    per_syn[0, 1, 1] = 99.0
    assert max_over_synonyms(per_syn, valid)[0, 1] == 0.0
    with pytest.raises(ValueError):
        max_over_synonyms(per_syn, torch.tensor([[True, False], [False, False]]))
    torch.testing.assert_close(embedding_logits(emb, text[:, 0], 1.0), torch.tensor([[0.0, 0.0]]))


def test_objectness():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    obj = objectness_from_logits(logits)
    torch.testing.assert_close(obj, torch.tensor([0.5, 0.75]))
