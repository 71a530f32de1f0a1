"""Crop losses and the audio-visual matching regulariser against hand-computed values."""

import math

import torch
import torch.nn.functional as F

from ovavss_d2.baselines.tpavi import (
    audio_visual_matching_loss,
    crop_audio_cosine_loss,
    crop_classification_loss,
    crop_pairwise_loss,
)


def test_classification_skips_unknown_classes():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0], [5.0, -5.0]], requires_grad=True)
    labels = torch.tensor([0, -1, 1])
    expected = (-F.log_softmax(logits[0], 0)[0] - F.log_softmax(logits[2], 0)[1]) / 2
    torch.testing.assert_close(crop_classification_loss(logits, labels), expected)
    none = crop_classification_loss(logits, torch.tensor([-1, -1, -1]))
    assert none.item() == 0.0 and none.requires_grad


def test_pairwise_hand_values():
    emb = torch.tensor(
        [[1.0, 0.0], [0.0, 3.0], [2.0, 0.0], [5.0, 5.0], [1.0, 1.0]], requires_grad=True
    )
    # object 0: crops 0, 1 (orthogonal: distance sqrt(2)); object 1: crops 2, 3, 4;
    # object 1, normalised: (2,3) and (2,4) at distance |(1,0)-(1,1)/sqrt2|, (3,4) at 0
    obj = torch.tensor([0, 0, 1, 1, 1])
    d = math.sqrt((1 - 1 / math.sqrt(2)) ** 2 + 0.5)
    expected = (math.sqrt(2) + (2 * d + 0.0) / 3) / 2
    loss = crop_pairwise_loss(emb, obj)
    assert abs(loss.item() - expected) < 1e-5
    loss.backward()
    assert emb.grad.abs().sum() > 0


def test_pairwise_needs_two_crops_of_one_object():
    emb = torch.randn(3, 4, requires_grad=True)
    loss = crop_pairwise_loss(emb, torch.tensor([0, 1, 2]))
    assert loss.item() == 0.0 and loss.requires_grad
    assert crop_pairwise_loss(emb[:0], torch.zeros(0, dtype=torch.long)).item() == 0.0


def test_audio_cosine_hand_values():
    crops = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    clip_audio = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    # crop 0 vs clip 0: cos 1; crop 1 vs clip 1: cos 1; crop 2 vs clip 0: cos -1
    loss = crop_audio_cosine_loss(crops, clip_audio, torch.tensor([0, 1, 0]))
    assert abs(loss.item() - (0 + 0 + 2) / 3) < 1e-6
    empty = crop_audio_cosine_loss(crops[:0], clip_audio, torch.zeros(0, dtype=torch.long))
    assert empty.item() == 0.0


def test_avm_is_zero_when_masked_features_match_audio():
    audio = torch.randn(2, 4)
    z = audio[:, :, None, None].expand(2, 4, 3, 3).clone()
    ones = torch.ones(2, 1, 6, 6)
    assert audio_visual_matching_loss({"res5": z}, ones, audio).abs().item() < 1e-6
    # half the mask off: pooled = audio / 2, a different softmax
    half = ones.clone()
    half[..., :, 3:] = 0.0
    z2 = audio[:, :, None, None].expand(2, 4, 6, 6).clone()
    pooled = audio / 2
    expected = F.kl_div(
        F.log_softmax(pooled, -1), F.log_softmax(audio, -1), reduction="batchmean", log_target=True
    )
    loss = audio_visual_matching_loss({"res4": z2}, half, audio)
    torch.testing.assert_close(loss, expected)
    assert loss.item() > 0
