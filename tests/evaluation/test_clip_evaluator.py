"""ovavss_d2.evaluation.clip_evaluator: channel_argmax (the evaluators' per-pixel class decision,
equal to torch's argmax(0)) and resize_nearest."""

import numpy as np
import torch

from ovavss_d2.evaluation.clip_evaluator import channel_argmax, resize_nearest


def test_matches_torch_argmax_on_random_maps():
    generator = torch.Generator().manual_seed(0)
    scores = torch.rand(7, 13, 11, generator=generator)
    assert torch.equal(channel_argmax(scores), scores.argmax(0))


def test_ties_go_to_the_first_channel():
    scores = torch.tensor([[[0.2, 0.5]], [[0.7, 0.5]], [[0.7, 0.1]]])  # (3, 1, 2)
    assert channel_argmax(scores).tolist() == [[1, 0]]


def test_one_channel_is_all_zeros():
    assert channel_argmax(torch.rand(1, 3, 4)).eq(0).all()


def test_resize_nearest_samples_pixel_centres():
    array = np.arange(16).reshape(4, 4)
    np.testing.assert_array_equal(resize_nearest(array, 2), [[5, 7], [13, 15]])
    np.testing.assert_array_equal(resize_nearest(np.array([[1, 2]]), 4), [[1, 1, 2, 2]] * 4)
