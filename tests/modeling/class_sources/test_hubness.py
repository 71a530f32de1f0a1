"""Mean-centring of a tagger's text space: a hub class stops attracting every tag."""

import pytest
import torch
import torch.nn.functional as F

from ovavss_d2.modeling.class_sources.hubness import centered, label_mean


def test_centring_removes_a_hub():
    # every label shares a common direction (axis 2); the "hub" class lies along it
    labels = F.normalize(torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 2.0]]), dim=-1)
    classes = F.normalize(torch.tensor([[2.0, 0.0, 1.0], [0.0, 0.0, 1.0]]), dim=-1)  # dog, hub
    sound = labels[:1]  # a dog tag
    assert (sound @ classes.t()).argmax() == 1  # the hub wins uncentred
    mean = label_mean(labels, "labels")
    logits = centered(sound, mean) @ centered(classes, mean).t()
    assert logits.argmax() == 0
    torch.testing.assert_close(centered(sound, mean).norm(dim=-1), torch.ones(1))


def test_off_and_empty_rows():
    x = torch.randn(2, 3)
    assert label_mean(x, "") is None and centered(x, None) is x
    zero = torch.zeros(1, 3)
    assert centered(zero, torch.ones(3)).abs().sum() == 0  # no evidence stays no evidence
    with pytest.raises(ValueError, match="CENTER"):
        label_mean(x, "vocabulary")
