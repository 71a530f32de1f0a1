"""OVAVSS per-query open-vocabulary scores: 2 queries over 3 classes (2 base, 1 novel), every
factor active, against values computed by hand.

The model is built through its constructor with the real ``learned`` source (over a stand-in
classifier whose logits are the decoder's ``pred_embeds``) and two stand-in sources that return
the clip's ``frames`` and ``audio_embeds`` as their class distributions, so each factor of
``score = p_fg * softmax(sum_s w_s * log p_s)`` has a known value.
"""

import math
from types import SimpleNamespace

import pytest
import torch
from detectron2.structures import ImageList
from torch import nn

from ovavss_d2.modeling.class_sources import ClassEvidence, ClassSource, LearnedSource
from ovavss_d2.modeling.class_sources import SourceWeights as W
from ovavss_d2.modeling.meta_arch.ovavss import OVAVSS

VOCAB = [("cat",), ("dog",), ("owl",)]  # cat and dog were trained on (base); owl is novel
LOG = math.log
SQ = math.sqrt
# exponents (base, novel): learned and audio lean on base classes, "clip" on novel ones
WEIGHTS = {"learned": W(1.0, 0.5), "clip": W(0.5, 1.0), "audio": W(1.0, 0.5)}


class _Texts:
    """Text classifier stand-in: a (K, 4) embedding per vocabulary."""

    def get(self, prompts):
        return torch.zeros(len(prompts), 4)


class _Passthrough(nn.Module):
    """Embedding classifier stand-in: the query embeddings are the logits (B, Q, K+1)."""

    def forward(self, pred_embeds, class_embeds):
        return pred_embeds


class _FramesAreProbs(ClassSource):
    """A source whose class distribution (Q, K) is the clip's ``frames``."""

    def __call__(self, clip):
        return ClassEvidence(probs=clip.frames)


class _AudioIsProbs(ClassSource):
    """A source whose class distribution (Q, K) is the clip's ``audio_embeds``."""

    def __call__(self, clip):
        return ClassEvidence(probs=clip.audio_embeds)


def _model(sources=("learned", "clip", "audio"), weights=None, penalty=LOG(2.0), **kwargs):
    args = dict(objectness_exponent=0.5, background_exponent=2.0)
    args.update(kwargs)
    every = {
        "learned": LearnedSource(_Passthrough(), base_logit_penalty=penalty),
        "clip": _FramesAreProbs(),
        "audio": _AudioIsProbs(),
    }
    model = OVAVSS(
        backbone=nn.Identity(),
        audio_encoder=nn.Identity(),
        pixel_decoder=nn.Identity(),
        transformer_decoder=nn.Identity(),
        text_encoder=None,
        text_classifier=_Texts(),
        embedding_classifier=_Passthrough() if "learned" in sources else None,
        class_sources={name: every[name] for name in sources},
        source_weights=weights or WEIGHTS,
        criterion=SimpleNamespace(weight_dict={}),
        train_vocabulary={
            "keys": ["cat", "dog"],
            "prompts": [("cat",), ("dog",)],
            "dataset_to_train": torch.tensor([-1, 0, 1]),
        },
        test_vocabulary=VOCAB,
        pixel_mean=[0.0, 0.0, 0.0],
        pixel_std=[1.0, 1.0, 1.0],
        **args,
    )
    return model.eval()


def _outputs(num_frames=1):
    """Decoder outputs of a batch of 2 clips; clip 1 holds the chosen values, clip 0 others."""
    learned = torch.tensor(
        [
            # class probabilities 0.5, 0.25, 0.25; background logit log(1/3): p_bg = 0.25
            [LOG(0.5), LOG(0.25), LOG(0.25), LOG(1 / 3)],
            # class probabilities 0.2, 0.2, 0.6; background logit 0: p_bg = 0.5
            [LOG(0.2), LOG(0.2), LOG(0.6), 0.0],
        ]
    )
    objectness = torch.tensor([[LOG(0.64), LOG(0.36)], [LOG(0.25), LOG(0.75)]])
    other = torch.zeros_like
    audio = torch.tensor([[0.5, 0.25, 0.25]] * 2)  # the clip's sounds, the same for both queries
    return {
        "pred_masks": torch.zeros(2, 2, num_frames, 4, 4),
        "pred_embeds": torch.stack([other(learned), learned]),
        "pred_objectness": torch.stack([other(objectness), objectness]),
        "audio_embeds": torch.stack([torch.full_like(audio, 1 / 3), audio]),
    }


CLIP_PROBS = torch.tensor([[0.25, 0.5, 0.25], [0.5, 0.25, 0.25]])


def _scores(model, num_frames=1):
    batch = [{"images": torch.full((2, 3), 1 / 3)}, {"images": CLIP_PROBS}]
    images = ImageList(torch.zeros(2 * num_frames, 3, 4, 4), [(4, 4)] * (2 * num_frames))
    with torch.no_grad():
        records = model._clip_evidence(_outputs(num_frames), batch, images, num_frames)
        return model.query_scores(records[1])


def _normalised(rows, p_fg):
    s = torch.tensor(rows)
    return torch.tensor(p_fg)[:, None] * s / s.sum(-1, keepdim=True)


# By hand, query 0 / query 1:
# learned after the base penalty (cat, dog halved, renormalised): (0.4, 0.2, 0.4) / (1/8, 1/8, 3/4)
# p_fg = (1 - p_bg) ** 2 * p_obj ** 0.5 = 0.75**2 * 0.8 = 0.45 / 0.5**2 * 0.5 = 0.125
# products learned ** w * clip ** w * audio ** w, exponents (1, .5, 1) on cat and dog, (.5, 1, .5)
# on owl; clip (0.25, 0.5, 0.25) / (0.5, 0.25, 0.25), audio (0.5, 0.25, 0.25)
EXPECTED = _normalised(
    [
        [0.4 * 0.5 * 0.5, 0.2 * SQ(0.5) * 0.25, SQ(0.4) * 0.25 * 0.5],
        [1 / 8 * SQ(0.5) * 0.5, 1 / 8 * 0.5 * 0.25, SQ(0.75) * 0.25 * 0.5],
    ],
    [0.45, 0.125],
)


def test_scores_with_every_factor_hand_computed():
    model = _model()
    torch.testing.assert_close(_scores(model), EXPECTED, rtol=0, atol=1e-6)
    assert model.class_names == ["cat", "dog", "owl"]


def test_base_and_novel_are_not_interchangeable():
    """The same inputs with owl trained on and cat, dog not: every class changes its exponents."""
    model = _model()
    model.train_keys, model.train_prompts = ["owl"], [("owl",)]
    # owl base: learned (0.5, 0.25, 0.125)/0.875 and (0.2, 0.2, 0.3)/0.7; exponents swap roles
    expected = _normalised(
        [
            [SQ(4 / 7) * 0.25 * SQ(0.5), SQ(2 / 7) * 0.5 * SQ(0.25), 1 / 7 * SQ(0.25) * 0.25],
            [SQ(2 / 7) * 0.5 * SQ(0.5), SQ(2 / 7) * 0.25 * SQ(0.25), 3 / 7 * SQ(0.25) * 0.25],
        ],
        [0.45, 0.125],
    )
    scores = _scores(model)
    torch.testing.assert_close(scores, expected, rtol=0, atol=1e-6)
    assert (scores - EXPECTED).abs().max() > 0.01


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        # learned only: p_fg * learned = 0.45 * (0.4, 0.2, 0.4), 0.125 * (1/8, 1/8, 3/4)
        (
            dict(sources=("learned",), weights={"learned": W(1, 1)}),
            [[0.18, 0.09, 0.18], [0.015625, 0.015625, 0.09375]],
        ),
        # CLIP only: no background model, so p_fg = p_obj ** 0.5 = 0.8 / 0.5
        (
            dict(sources=("clip",), weights={"clip": W(1, 1)}),
            [[0.2, 0.4, 0.2], [0.25, 0.125, 0.125]],
        ),
        # learned only, no penalty, background and objectness ignored: the learned softmax
        (
            dict(
                sources=("learned",),
                weights={"learned": W(1, 1)},
                penalty=0.0,
                background_exponent=0.0,
                objectness_exponent=0.0,
            ),
            [[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]],
        ),
        # CLIP exponent 1 for the novel class and 0 for base classes: owl from CLIP alone
        (
            dict(
                sources=("learned", "clip"),
                weights={"learned": W(1, 0), "clip": W(0, 1)},
                objectness_exponent=0.0,
            ),
            # (0.4, 0.2, 0.25)/0.85 * 0.5625 and (1/8, 1/8, 1/4)/0.5 * 0.25
            [
                [0.5625 * 0.4 / 0.85, 0.5625 * 0.2 / 0.85, 0.5625 * 0.25 / 0.85],
                [0.0625] * 2 + [0.125],
            ],
        ),
        # a source of weight 0 everywhere changes nothing
        (
            dict(
                sources=("learned", "clip", "audio"),
                weights={"learned": W(1, 1), "clip": W(0, 0), "audio": W(0, 0)},
            ),
            [[0.18, 0.09, 0.18], [0.015625, 0.015625, 0.09375]],
        ),
    ],
)
def test_scores_of_each_class_source(kwargs, expected):
    torch.testing.assert_close(_scores(_model(**kwargs)), torch.tensor(expected), rtol=0, atol=1e-6)


def test_base_mask_by_name():
    model = _model()
    assert model._base_mask([("Cat",), ("owl",), ("dog", "puppy")]).tolist() == [True, False, True]


def test_scores_do_not_depend_on_the_clip_length():
    """Clips of 3 frames: one score per query, not per frame."""
    torch.testing.assert_close(_scores(_model(), num_frames=3), EXPECTED, rtol=0, atol=1e-6)


def test_base_classes_from_training_keys_or_prompts():
    """A class is base when either its key or its prompt's display name was trained on."""
    model = _model()
    model.train_keys, model.train_prompts = ["cat"], [("dog",)]
    assert model._base_mask(VOCAB).tolist() == [True, True, False]


def test_sources_need_weights():
    with pytest.raises(ValueError, match="each with weights"):
        _model(weights={"learned": W(1, 1)})
