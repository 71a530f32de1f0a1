"""meta_arch/inference.py: per-frame outputs of one clip from query scores and mask logits."""

import torch

from ovavss_d2.modeling.meta_arch.inference import clip_results, frame_mask_logits

SIZES = dict(padded_size=(8, 8), image_size=(8, 6), output_size=(16, 12))


def _masks():
    """(Q=2, T=2, 2, 2) logits: query 0 left half, query 1 right half, both frames."""
    m = torch.full((2, 2, 2, 2), -20.0)
    m[0, :, :, 0] = 20.0
    m[1, :, :, 1] = 20.0
    return m


def test_masks_are_unpadded_then_resized():
    m = frame_mask_logits(_masks(), 0, (8, 8), (8, 6), (16, 12))
    assert m.shape == (2, 16, 12)
    # padded 8x8 -> the 8x6 crop -> 16x12: query 0 owns the columns left of x = 4 in the padded
    # frame, i.e. 4/6 of the crop's width
    assert (m[0, :, :7] > 0).all() and (m[0, :, 9:] < 0).all()


def test_per_frame_scores_choose_on_the_clip_mean_and_score_per_frame():
    scores = torch.zeros(2, 2, 3)  # (Q, T, K)
    scores[0, :, 0] = torch.tensor([0.9, 0.5])  # query 0: class 0, mean 0.7
    scores[1, :, 2] = torch.tensor([0.2, 0.8])  # query 1: class 2, mean 0.5
    out = clip_results(scores, _masks(), top_k=2, score_threshold=0.4, mask_threshold=0.5, **SIZES)
    assert len(out) == 2
    for t, frame in enumerate(out):
        inst = frame["instances"]
        assert inst.pred_classes.tolist() == [0, 2]  # both pass 0.4 on the clip mean
        torch.testing.assert_close(inst.scores, scores[[0, 1], t, [0, 2]])
        assert frame["sem_seg"].shape == (4, 16, 12)
    # frame 0: query 1 scores 0.2 (p_fg < 0.5): its half is background; frame 1: class 2 (ch 3)
    assert out[0]["sem_seg"][:, 8, 11].argmax() == 0
    assert out[1]["sem_seg"][:, 8, 11].argmax() == 3
    assert out[0]["sem_seg"][:, 8, 0].argmax() == 1


def test_clip_scores_equal_repeated_frame_scores():
    scores = torch.tensor([[0.6, 0.1, 0.0], [0.0, 0.0, 0.7]])
    flat = clip_results(scores, _masks(), top_k=3, score_threshold=0.3, mask_threshold=0.5, **SIZES)
    rep = clip_results(
        scores[:, None].expand(-1, 2, -1),
        _masks(),
        top_k=3,
        score_threshold=0.3,
        mask_threshold=0.5,
        **SIZES,
    )
    for a, b in zip(flat, rep):
        torch.testing.assert_close(a["sem_seg"], b["sem_seg"])
        torch.testing.assert_close(a["instances"].scores, b["instances"].scores)


def test_per_frame_scores_keep_the_best_frame_and_unpaint_silent_frames():
    """A query that sounds in frame 1 only (score 0.9 there, 0.1 in frame 0) is kept on its
    best frame, and painted only there: empty instance mask and background in frame 0."""
    scores = torch.zeros(2, 2, 3)  # (Q, T, K)
    scores[0, :, 0] = torch.tensor([0.1, 0.9])  # mean 0.5
    scores[1, :, 2] = torch.tensor([0.8, 0.8])
    for semantic_from in ("masks", "instances"):
        out = clip_results(
            scores,
            _masks(),
            top_k=2,
            score_threshold=0.6,  # above query 0's mean: kept on its best frame, not its mean
            mask_threshold=0.5,
            semantic_from=semantic_from,
            **SIZES,
        )
        first, second = (frame["instances"] for frame in out)
        assert first.pred_classes.tolist() == second.pred_classes.tolist() == [0, 2]
        torch.testing.assert_close(first.scores, torch.tensor([0.1, 0.8]))
        assert not first.pred_masks[0].any() and second.pred_masks[0].any()
        assert first.pred_masks[1].any() and second.pred_masks[1].any()
        assert (out[0]["sem_seg"][:, :, :7].argmax(0) == 0).all()  # query 0's half: background
        assert (out[1]["sem_seg"][:, :, :7].argmax(0) == 1).all()  # class 0 where it sounds
