"""AudioLabelClassifier: the clip's sounds named through the audio encoder's label names."""

import torch
import torch.nn.functional as F
from torch import nn

from ovavss_d2.modeling.audio_label_classifier import AudioLabelClassifier, audio_label_names

LABELS = ["Dog", "Bark", "Violin, fiddle", "Engine"]


class _Tagger(nn.Module):
    """An 'audio encoder' whose 4-d embeddings are label logits (identity classifier)."""

    def __init__(self):
        super().__init__()
        self.classifier = nn.Linear(4, 4, bias=False)
        with torch.no_grad():
            self.classifier.weight.copy_(torch.eye(4))
        self.class_names = LABELS


class _TextCache:
    """One-hot 'text embeddings': dog/bark -> axis 0, violin -> 1, engine -> 2, cello -> 1."""

    axis = {"dog": 0, "bark": 0, "violin, fiddle": 1, "violin": 1, "cello": 1, "engine": 2}

    def get(self, vocabulary):
        rows = [F.one_hot(torch.tensor(self.axis[v[0].lower()]), 3).float() for v in vocabulary]
        return torch.stack(rows)


def test_label_names():
    assert audio_label_names(_Tagger()) == LABELS
    assert audio_label_names(nn.Linear(2, 2)) is None


def test_distribution_follows_the_loudest_sound():
    classifier = AudioLabelClassifier(_Tagger(), LABELS, _TextCache(), top_k=2, logit_scale=10.0)
    # Two seconds of barking, strong: labels Dog and Bark on, the rest off.
    embeds = torch.tensor([[[8.0, 8.0, -8.0, -8.0], [8.0, 6.0, -8.0, -8.0]]])  # (B=1, T=2, J=4)
    p = classifier(embeds, [("cello",), ("dog",)])
    assert p.shape == (1, 2)
    assert p[0, 1] > 0.99  # dog
    # A violin sound names the novel "cello" through the shared text axis.
    p = classifier(torch.tensor([[[-8.0, -8.0, 8.0, -8.0]]]), [("dog",), ("cello",)])
    assert p[0, 1] > 0.99
    assert torch.allclose(p.sum(-1), torch.ones(1))


def test_top_k_drops_weak_labels():
    classifier = AudioLabelClassifier(_Tagger(), LABELS, _TextCache(), top_k=1, logit_scale=10.0)
    embeds = torch.tensor([[[3.0, -8.0, 2.9, -8.0]]])  # dog slightly ahead of violin
    logits = classifier.logits(embeds, [("dog",), ("violin",)])
    assert logits.shape == (1, 1, 2)
    assert logits[0, 0, 0] == 10.0 and logits[0, 0, 1] == 0.0
