"""class_sources/av_agreement.py: the training-free sounding prior from image and sound tags in the
text space, on stub taggers with hand-made label embeddings."""

from types import SimpleNamespace

import pytest
import torch
from detectron2.modeling import build_model

from ovavss_d2.modeling.class_sources.av_agreement import AVAgreement, agreement_prior
from ovavss_d2.modeling.class_sources.base import ClipQueries

E = 4  # text space: axis 0 "dog", axis 1 "violin"


def test_agreement_prior_hand_computed():
    queries = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    seconds = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    prior = agreement_prior(queries, seconds, scale=10.0, center=0.3, exponent=2.0)
    cos = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    torch.testing.assert_close(prior, torch.sigmoid(10.0 * (cos - 0.3)) ** 2)


class _Cache:
    def __init__(self, table):
        self.table = table

    def get(self, names):
        return torch.stack([self.table[n[0]] for n in names])


def _agreement():
    axes = torch.eye(E)
    image_labels = ["dog photo", "violin photo"]
    image_tags = SimpleNamespace(
        select_by="objectness",
        max_queries=2,
        top_k=0,
        label_names=[(n,) for n in image_labels],
        text_classifier=_Cache({"dog photo": axes[0], "violin photo": axes[1]}),
        # query 0 looks like a dog, query 1 like a violin (2 selected of 3 queries)
        label_probs=lambda frames, masks: torch.tensor([[0.9, 0.1], [0.0, 1.0]])[: len(masks)],
    )
    sound_labels = ["bark", "violin"]
    head = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        head.weight.copy_(10.0 * torch.eye(2))  # audio embedding axis j -> tag j
    audio_tags = SimpleNamespace(
        label_names=[(n,) for n in sound_labels],
        text_classifier=_Cache({"bark": axes[0], "violin": axes[1]}),
        audio_encoder=SimpleNamespace(classifier=head),
        keep=None,
        top_k=1,
    )
    return AVAgreement(image_tags, audio_tags, scale=10.0, center=0.3)


def _clip():
    return ClipQueries(
        pred_embeds=torch.zeros(3, 8),
        pred_objectness=torch.tensor([[3.0, 0.0], [2.0, 0.0], [-3.0, 0.0]]),
        mask_probs=lambda: torch.ones(3, 2, 4, 4),
        frames=torch.zeros(2, 3, 4, 4, dtype=torch.uint8),
        audio_embeds=torch.tensor([[1.0, -1.0], [-1.0, 1.0]]),  # second 0 barks, 1 plays violin
        vocabulary=[("dog",)],
        class_embeds=torch.zeros(1, E),
        is_base=torch.tensor([True]),
    )


def test_dog_sounds_when_it_barks_violin_when_it_plays():
    prior = _agreement()(_clip())  # (Q, T)
    assert prior.shape == (3, 2)
    assert prior[0, 0] > 0.9 and prior[0, 1] < 0.2  # the dog, in the bark / violin second
    assert prior[1, 1] > 0.9 and prior[1, 0] < 0.1
    assert prior[2].tolist() == [1.0, 1.0]  # not tagged (3rd by objectness): no information


def test_enabled_without_both_taggers_is_a_clear_error(repo_root):
    import sys

    sys.path.insert(0, str(repo_root / "tests" / "modeling" / "meta_arch"))
    from ovavss_model_helpers import tiny_cfg

    cfg = tiny_cfg(repo_root, **{"MODEL.OVAVSS.TEST.AV_AGREEMENT.ENABLED": True})
    cfg.MODEL.CLASS_SOURCES.NAMES = ["learned"]
    cfg.MODEL.CLASS_SOURCES.BASE_WEIGHTS = [1.0]
    cfg.MODEL.CLASS_SOURCES.NOVEL_WEIGHTS = [1.0]
    with pytest.raises(ValueError, match=r"AV_AGREEMENT.ENABLED needs the class sources \["):
        build_model(cfg)
