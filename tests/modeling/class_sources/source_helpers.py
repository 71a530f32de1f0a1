"""Stand-ins shared by the class-source tests: a tagging 'audio encoder', one-hot texts, a clip."""

import torch
import torch.nn.functional as F
from torch import nn

from ovavss_d2.modeling.class_sources import ClipQueries

LABELS = ["Dog", "Bark", "Violin, fiddle", "Engine"]


class Tagger(nn.Module):
    """An 'audio encoder' whose 4-d embeddings are label logits (identity classifier)."""

    def __init__(self):
        super().__init__()
        self.classifier = nn.Linear(4, 4, bias=False)
        with torch.no_grad():
            self.classifier.weight.copy_(torch.eye(4))
        self.class_names = LABELS


class OneHotTexts:
    """'Text embeddings' on 4 axes: dog/bark 0, violin/cello 1, engine 2; any other name 3 (a name
    no sound tag is near)."""

    axis = {"dog": 0, "bark": 0, "violin, fiddle": 1, "violin": 1, "cello": 1, "engine": 2}

    def get(self, vocabulary):
        rows = [F.one_hot(torch.tensor(self.axis.get(v[0].lower(), 3)), 4) for v in vocabulary]
        return torch.stack(rows).float()


class TextEncoder:
    """Text encoder stand-in (``encode``, ``dim``) for building sources from a config."""

    dim = 4

    def encode(self, texts):
        return OneHotTexts().get([(t,) for t in texts])


def make_clip(vocabulary, *, queries=3, frames=2, size=(32, 32), seed=0, embed_dim=8):
    """A :class:`ClipQueries` of random decoder outputs for ``vocabulary`` (synonym tuples)."""
    g = torch.Generator().manual_seed(seed)
    h, w = size
    masks = torch.rand(queries, frames, h, w, generator=g)
    masks[:, :, : h // 2] = 1.0  # every query present in every frame
    k = len(vocabulary)
    return ClipQueries(
        pred_embeds=torch.randn(queries, embed_dim, generator=g),
        pred_objectness=torch.randn(queries, 2, generator=g),
        mask_probs=lambda: masks,
        frames=torch.randint(0, 256, (frames, 3, h, w), generator=g, dtype=torch.uint8),
        audio_embeds=torch.randn(frames, 4, generator=g) * 4,
        vocabulary=list(vocabulary),
        class_embeds=F.normalize(torch.randn(k, 32, generator=g), dim=-1),
        is_base=torch.arange(k) % 2 == 0,
    )


def assert_distribution(probs: torch.Tensor, num_queries: int, num_classes: int) -> None:
    """Finite, non-negative rows over the K classes that sum to 1."""
    assert probs.shape == (num_queries, num_classes)
    assert torch.isfinite(probs).all() and (probs >= 0).all()
    torch.testing.assert_close(probs.sum(-1), torch.ones(num_queries))
