"""The shared functions of class_sources/ensemble.py on tiny hand-computed tensors."""

import math

import pytest
import torch

from ovavss_d2.modeling.class_sources.ensemble import (
    embedding_logits,
    max_over_synonyms,
    objectness_from_logits,
)


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
