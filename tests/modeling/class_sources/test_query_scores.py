"""OVAVSS per-query open-vocabulary scores: 2 queries over 3 classes (2 base, 1 novel), every
factor active, against values computed by hand.

The model is built through its constructor with stand-in class sources whose outputs are the
chosen probabilities, so each factor of ``score = p_fg * p_cls`` has a known value.
"""

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from ovavss_d2.modeling.meta_arch.ovavss import OVAVSS

VOCAB = [("cat",), ("dog",), ("owl",)]  # cat and dog were trained on (base); owl is novel
LOG = math.log


class _Texts:
    """Text classifier stand-in: a (K, 4) embedding per vocabulary."""

    def get(self, prompts):
        return torch.zeros(len(prompts), 4)


class _Passthrough(nn.Module):
    """Embedding classifier stand-in: the decoder's ``pred_embeds`` are the logits (B, Q, K+1)."""

    def forward(self, pred_embeds, class_embeds):
        return pred_embeds


class _ClipLogits(nn.Module):
    """CLIP classifier stand-in: the clip's ``frames`` are its (Q, K) logits."""

    def forward(self, frames, masks, class_embeds):
        return frames, None


class _AudioLabels(nn.Module):
    """Audio-label stand-in: the clip's ``audio_embeds`` are its (1, K) class distribution."""

    def forward(self, audio_embeds, prompts):
        return audio_embeds


def _model(learned=True, clip=True, audio=True, **kwargs) -> OVAVSS:
    args = dict(
        ensemble_alpha=0.5,
        ensemble_beta=0.75,
        audio_alpha=0.5,
        audio_beta=0.25,
        objectness_exponent=0.5,
        background_exponent=2.0,
        base_logit_penalty=LOG(2.0),
    )
    args.update(kwargs)
    model = OVAVSS(
        backbone=nn.Identity(),
        audio_encoder=nn.Identity(),
        pixel_decoder=nn.Identity(),
        transformer_decoder=nn.Identity(),
        text_encoder=None,
        text_classifier=_Texts(),
        embedding_classifier=_Passthrough() if learned else None,
        clip_visual=_ClipLogits() if clip else None,
        audio_labels=_AudioLabels() if audio else None,
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


def _outputs():
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
    return {
        "pred_masks": torch.zeros(2, 2, 1, 4, 4),
        "pred_embeds": torch.stack([other(learned), learned]),
        "pred_objectness": torch.stack([other(objectness), objectness]),
        "audio_embeds": torch.tensor([[1 / 3, 1 / 3, 1 / 3], [0.5, 0.25, 0.25]]),
    }


CLIP_LOGITS = torch.tensor([[LOG(0.25), LOG(0.5), LOG(0.25)], [LOG(0.5), LOG(0.25), LOG(0.25)]])

# By hand, query 0 / query 1:
# learned after the base penalty (cat, dog halved, renormalised): (0.4, 0.2, 0.4) / (1/8, 1/8, 3/4)
# p_fg = (1 - p_bg) ** 2 * p_obj ** 0.5 = 0.75**2 * 0.8 = 0.45 / 0.5**2 * 0.5 = 0.125
# CLIP ensemble, exponent 0.5 on cat and dog, 0.75 on owl: p_l ** (1 - a) * p_c ** a, renormalised
# audio ensemble, exponent 0.5 on cat and dog, 0.25 on owl, with (0.5, 0.25, 0.25), renormalised
EXPECTED = torch.tensor(
    [[0.18676637, 0.13206377, 0.13116986], [0.04947654, 0.02941893, 0.04610453]]
)


def _scores(model):
    with torch.no_grad():
        return model._query_scores(_outputs(), 1, CLIP_LOGITS, None)


def test_scores_with_every_factor_hand_computed():
    model = _model()
    torch.testing.assert_close(_scores(model), EXPECTED, rtol=0, atol=1e-6)
    assert model.class_names == ["cat", "dog", "owl"]


def test_base_and_novel_are_not_interchangeable():
    """The same inputs with owl trained on and cat, dog not: every class changes its exponents."""
    model = _model()
    model.train_keys, model.train_prompts = ["owl"], [("owl",)]
    # owl base: learned (0.5, 0.25, 0.125)/0.875 and (0.2, 0.2, 0.3)/0.7; exponents swap roles
    pl = torch.tensor([[4 / 7, 2 / 7, 1 / 7], [2 / 7, 2 / 7, 3 / 7]])
    pc = CLIP_LOGITS.exp()
    a = torch.tensor([0.75, 0.75, 0.5])
    p = pl ** (1 - a) * pc**a
    p = p / p.sum(-1, keepdim=True)
    b = torch.tensor([0.25, 0.25, 0.5])
    p = p ** (1 - b) * torch.tensor([0.5, 0.25, 0.25]) ** b
    p = p / p.sum(-1, keepdim=True)
    expected = torch.tensor([[0.45], [0.125]]) * p
    scores = _scores(model)
    torch.testing.assert_close(scores, expected, rtol=0, atol=1e-6)
    assert (scores - EXPECTED).abs().max() > 0.01


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        # learned only: p_fg * learned = 0.45 * (0.4, 0.2, 0.4), 0.125 * (1/8, 1/8, 3/4)
        (
            dict(clip=False, audio=False),
            [[0.18, 0.09, 0.18], [0.015625, 0.015625, 0.09375]],
        ),
        # CLIP only: no learned classifier, so p_fg = p_obj ** 0.5 = 0.8 / 0.5
        (
            dict(learned=False, audio=False),
            [[0.2, 0.4, 0.2], [0.25, 0.125, 0.125]],
        ),
        # learned only, no penalty, background and objectness ignored: the learned softmax
        (
            dict(
                clip=False,
                audio=False,
                base_logit_penalty=0.0,
                background_exponent=0.0,
                objectness_exponent=0.0,
            ),
            [[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]],
        ),
        # CLIP exponent 1 for the novel class and 0 for base classes: owl from CLIP alone
        (
            dict(audio=False, ensemble_alpha=0.0, ensemble_beta=1.0, objectness_exponent=0.0),
            # (0.4, 0.2, 0.25)/0.85 * 0.5625 and (1/8, 1/8, 1/4)/0.5 * 0.25
            [
                [0.5625 * 0.4 / 0.85, 0.5625 * 0.2 / 0.85, 0.5625 * 0.25 / 0.85],
                [0.0625] * 2 + [0.125],
            ],
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
    model = _model()
    outputs = _outputs()
    outputs["pred_masks"] = torch.zeros(2, 2, 3, 4, 4)
    with torch.no_grad():
        scores = model._query_scores(outputs, 1, CLIP_LOGITS, None)
    torch.testing.assert_close(scores, EXPECTED, rtol=0, atol=1e-6)


def test_base_classes_from_training_keys_or_prompts():
    """A class is base when either its key or its prompt's display name was trained on."""
    model = _model()
    model.train_keys, model.train_prompts = ["cat"], [("dog",)]
    assert model._base_mask(VOCAB).tolist() == [True, True, False]
