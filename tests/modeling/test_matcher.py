"""HungarianMatcher: cost terms against hand-computed values, assignment against brute force, the
batch matched as clip by clip, and one download of the costs per call."""

import itertools
import math

import pytest
import torch
from scipy.optimize import linear_sum_assignment

from ovavss_d2.modeling.matcher import HungarianMatcher, batch_dice_cost, batch_sigmoid_ce_cost
from ovavss_d2.utils.host_syncs import HostSyncCounter


def _pixel_centres(h: int, w: int) -> torch.Tensor:
    """(h*w, 2) normalised (x, y) pixel centres, where point_sample reads exact pixel values."""
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.stack([(xs.flatten() + 0.5) / w, (ys.flatten() + 0.5) / h], dim=1).float()


def _clip(num_queries=4, num_objects=3, frames=2, k=5, seed=0, annotated=None):
    g = torch.Generator().manual_seed(seed)
    outputs = {
        "pred_objectness": torch.randn(num_queries, 2, generator=g),
        "pred_logits": torch.randn(num_queries, k + 1, generator=g),
        "pred_masks": torch.randn(num_queries, frames, 4, 4, generator=g) * 3,
    }
    target = {
        "labels": torch.randint(0, k, (num_objects,), generator=g),
        "masks": torch.rand(num_objects, frames, 4, 4, generator=g) > 0.5,
        "annotated": torch.ones(frames, dtype=torch.bool) if annotated is None else annotated,
    }
    return outputs, target


def _hand_cost(outputs, target, w_obj, w_cls, w_mask, w_dice):
    """Costs computed element by element over every annotated pixel."""
    q = outputs["pred_masks"].shape[0]
    n = target["labels"].shape[0]
    frames = target["annotated"].nonzero().flatten()
    cost = torch.zeros(q, n)
    for i in range(q):
        p_obj = outputs["pred_objectness"][i].softmax(-1)[0]
        p_cls = outputs["pred_logits"][i].softmax(-1)
        x = outputs["pred_masks"][i, frames].flatten()
        for j in range(n):
            y = target["masks"][j, frames].flatten().float()
            c = -w_obj * p_obj - w_cls * p_cls[target["labels"][j]]
            if x.numel():
                s = x.sigmoid()
                bce = -(y * torch.log(s) + (1 - y) * torch.log(1 - s)).mean()
                dice = 1 - (2 * (s * y).sum() + 1) / (s.sum() + y.sum() + 1)
                c = c + w_mask * bce + w_dice * dice
            cost[i, j] = c
    return cost


@pytest.mark.parametrize(
    "weights", [(2.0, 2.0, 5.0, 5.0), (0.0, 1.0, 0.0, 3.0), (1.0, 0.0, 2.0, 0.0)]
)
def test_cost_matrix_matches_hand_computation(weights, device):
    outputs, target = _clip()
    matcher = HungarianMatcher(
        cost_objectness=weights[0],
        cost_class=weights[1],
        cost_mask=weights[2],
        cost_dice=weights[3],
    )
    on_device = _to(device, outputs, target)
    cost = matcher.cost_matrix(*on_device, point_coords=_pixel_centres(4, 4).to(device))
    assert cost.device.type == device
    torch.testing.assert_close(
        cost.cpu(), _hand_cost(outputs, target, *weights), atol=1e-5, rtol=1e-5
    )


def test_unannotated_frames_do_not_count():
    annotated = torch.tensor([True, False])
    outputs, target = _clip(annotated=annotated)
    matcher = HungarianMatcher()
    coords = _pixel_centres(4, 4)
    before = matcher.cost_matrix(outputs, target, point_coords=coords)
    outputs["pred_masks"][:, 1] = torch.randn_like(outputs["pred_masks"][:, 1]) * 10  # frame 1 only
    target["masks"][:, 1] = ~target["masks"][:, 1]
    after = matcher.cost_matrix(outputs, target, point_coords=coords)
    torch.testing.assert_close(before, after)
    torch.testing.assert_close(
        before, _hand_cost(outputs, target, 2.0, 2.0, 5.0, 5.0), atol=1e-5, rtol=1e-5
    )


def test_no_annotated_frame_leaves_class_costs():
    outputs, target = _clip(annotated=torch.tensor([False, False]))
    cost = HungarianMatcher().cost_matrix(outputs, target, point_coords=_pixel_centres(4, 4))
    torch.testing.assert_close(cost, _hand_cost(outputs, target, 2.0, 2.0, 5.0, 5.0))


@pytest.mark.parametrize("num_queries,num_objects", [(3, 3), (5, 3), (4, 1), (6, 4)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_assignment_is_optimal_brute_force(num_queries, num_objects, seed, device):
    outputs, target = _to(device, *_clip(num_queries, num_objects, seed=seed))
    matcher = HungarianMatcher(num_points=64)
    torch.manual_seed(seed)
    batch = {k: v[None] for k, v in outputs.items()}
    rows, cols = matcher(batch, [target])[0]
    assert rows.device.type == cols.device.type == device
    rows, cols = rows.cpu(), cols.cpu()
    assert len(rows) == len(set(rows.tolist())) == num_objects
    assert sorted(cols.tolist()) == list(range(num_objects))
    # Same random points as the matcher drew: recompute its cost with the same seed.
    torch.manual_seed(seed)
    cost = matcher.cost_matrix(outputs, target).cpu()
    best = min(
        sum(cost[q, j].item() for j, q in enumerate(perm))
        for perm in itertools.permutations(range(num_queries), num_objects)
    )
    assert cost[rows, cols].sum().item() == pytest.approx(best, abs=1e-5)


def test_batch_with_empty_clip(device):
    outputs1, target1 = _to(device, *_clip(seed=3))
    outputs2, target2 = _to(device, *_clip(seed=4, num_objects=0))
    batch = {k: torch.stack([outputs1[k], outputs2[k]]) for k in outputs1}
    indices = HungarianMatcher()(batch, [target1, target2])
    assert len(indices[0][0]) == 3
    assert indices[1][0].numel() == 0 and indices[1][1].numel() == 0


def _to(device, outputs, target):
    """A clip's outputs and target on ``device``; ``annotated`` stays on the host (as
    ``prepare_targets`` leaves it)."""
    outputs = {k: v.to(device) for k, v in outputs.items()}
    return outputs, {k: v if k == "annotated" else v.to(device) for k, v in target.items()}


def _batch(device, objects=(3, 0, 2, 1), queries=6, seed=5):
    """Outputs ``(B, Q, ...)`` and B targets on ``device``; clip 2 has its second frame
    unannotated."""
    clips = []
    for b, n in enumerate(objects):
        annotated = torch.tensor([True, b != 2])
        clips.append(_to(device, *_clip(queries, n, seed=seed + b, annotated=annotated)))
    outputs = {k: torch.stack([o[k] for o, _ in clips]) for k in clips[0][0]}
    return outputs, [t for _, t in clips]


def _match_clip_by_clip(matcher, outputs, targets):
    """The matcher before issue 19: each clip's costs downloaded and solved on their own."""
    result = []
    for b, target in enumerate(targets):
        cost = matcher.cost_matrix({k: v[b] for k, v in outputs.items()}, target).cpu()
        rows, cols = linear_sum_assignment(cost.numpy())
        result.append((rows.tolist(), cols.tolist()))
    return result


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_matched_as_clip_by_clip(device, seed):
    outputs, targets = _batch(device, seed=seed)
    matcher = HungarianMatcher(num_points=32)
    torch.manual_seed(seed)  # the same random points in both runs
    indices = matcher(outputs, targets)
    torch.manual_seed(seed)
    expected = _match_clip_by_clip(matcher, outputs, targets)
    assert [(rows.tolist(), cols.tolist()) for rows, cols in indices] == expected
    assert [len(rows) for rows, _ in indices] == [3, 0, 2, 1]
    assert all(i.device.type == device and i.dtype == torch.int64 for pair in indices for i in pair)


@pytest.mark.parametrize("objects,downloads", [((3, 0, 2, 1), 1), ((2,), 1), ((0, 0), 0)])
def test_costs_downloaded_once_per_batch(device, objects, downloads):
    """One device-to-host copy of all clips' costs (none without objects), and nothing else that
    waits for the device: the frame and assignment indices go up without blocking."""
    outputs, targets = _batch(device, objects=objects)
    counter = HostSyncCounter(torch.device(device))
    counter.mark_host([t["annotated"] for t in targets])
    with counter:
        HungarianMatcher(num_points=16)(outputs, targets)
    assert dict(counter.counts) == ({"Tensor.cpu": downloads} if downloads else {})


def test_non_finite_cost_rejected(device):
    outputs, targets = _batch(device)
    outputs["pred_logits"][3, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="^HungarianMatcher: non-finite matching cost$"):
        HungarianMatcher(num_points=16)(outputs, targets)


def test_pairwise_costs_small_case():
    x = torch.tensor([[10.0, -10.0], [0.0, 0.0]])  # (Q=2, P=2)
    y = torch.tensor([[1.0, 0.0]])  # (N=1, P=2)
    dice = batch_dice_cost(x, y)
    s = x.sigmoid()
    assert dice[0, 0].item() == pytest.approx(
        float(1 - (2 * s[0, 0] + 1) / (s[0].sum() + 1 + 1)), abs=1e-6
    )
    bce = batch_sigmoid_ce_cost(x, y)
    assert bce[1, 0].item() == pytest.approx(float(torch.log(torch.tensor(2.0))), abs=1e-6)


def test_all_zero_costs_rejected():
    with pytest.raises(ValueError):
        HungarianMatcher(cost_objectness=0, cost_class=0, cost_mask=0, cost_dice=0)


# the inputs of test_criterion.py's dice-loss test
# sigmoid(log 3) = 3/4, sigmoid(-log 3) = 1/4, sigmoid(0) = 1/2
L3 = math.log(3.0)
LOGITS = torch.tensor([[L3, -L3, 0.0], [0.0, L3, L3]])  # (M=2, P=3)
TARGETS = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])


def test_batch_dice_cost_hand_computed():
    cost = batch_dice_cost(LOGITS, TARGETS[:1])  # (Q=2, N=1)
    # query 1 against target 0: 2|XY| = 2 (1/2 + 3/4) = 5/2, |X| + |Y| = 2 + 2 = 4
    torch.testing.assert_close(cost, torch.tensor([[1 - 3.5 / 4.5], [1 - 3.5 / 5]]))


def test_sigmoid_ce_cost_of_no_points():
    cost = batch_sigmoid_ce_cost(torch.zeros(3, 0), torch.zeros(2, 0))
    assert cost.shape == (3, 2) and not cost.any()
    one = batch_sigmoid_ce_cost(torch.tensor([[0.0]]), torch.tensor([[1.0]]))  # one point
    torch.testing.assert_close(one, torch.tensor([[math.log(2.0)]]))


def test_matcher_needs_a_nonzero_cost():
    for costs in [dict(cost_objectness=0, cost_class=0, cost_mask=0, cost_dice=0)]:
        with pytest.raises(ValueError, match="^HungarianMatcher: all matching costs are 0$"):
            HungarianMatcher(**costs)
    HungarianMatcher(cost_objectness=0, cost_class=0, cost_mask=0, cost_dice=1)
    HungarianMatcher(cost_objectness=0, cost_class=0, cost_mask=1, cost_dice=0)


# -- issue 17: unnamed foreground (label -1) has no class cost


def test_unnamed_object_has_no_class_cost(device):
    outputs, target = _clip(num_objects=3, seed=6)
    unnamed = dict(target, labels=target["labels"].clone())
    unnamed["labels"][1] = -1
    cost = HungarianMatcher().cost_matrix(
        *_to(device, outputs, unnamed), point_coords=_pixel_centres(4, 4).to(device)
    )
    expected = _hand_cost(outputs, target, 2.0, 2.0, 5.0, 5.0)  # named columns as before
    expected[:, 1] = _hand_cost(outputs, target, 2.0, 0.0, 5.0, 5.0)[:, 1]  # objectness, masks
    torch.testing.assert_close(cost.cpu(), expected, atol=1e-5, rtol=1e-5)


def test_named_labels_give_the_class_cost_of_before_bit_for_bit(device):
    outputs, target = _to(device, *_clip(num_objects=3, seed=7))
    matcher = HungarianMatcher(cost_objectness=0.0, cost_class=2.0, cost_mask=0.0, cost_dice=0.0)
    cost = matcher.cost_matrix(outputs, target)
    prob = outputs["pred_logits"].float().softmax(-1)
    assert torch.equal(cost, torch.zeros_like(cost) - 2.0 * prob[:, target["labels"]])


def test_frame_objectness_cost_hand_computed_and_decisive():
    """Cost: mean over annotated frames of BCE(logit(q, t), object n sounds in t). Two queries
    with the same mask, one sounding when the object does: the frame cost picks it."""
    outputs, target = _clip(num_queries=2, num_objects=1, frames=3, seed=4)
    outputs["pred_masks"][1] = outputs["pred_masks"][0]
    outputs["pred_objectness"][1] = outputs["pred_objectness"][0]
    outputs["pred_logits"][1] = outputs["pred_logits"][0]
    target["masks"][0, 0] = False  # silent in frame 0 (unlabelled), sounding in 1 and 2
    target["masks"][0, 1:, 0, 0] = True
    target["annotated"] = torch.tensor([True, True, False])
    outputs["pred_frame_objectness"] = torch.tensor([[4.0, -4.0, 9.0], [-4.0, 4.0, -9.0]])
    plain = HungarianMatcher(num_points=16).cost_matrix(outputs, target, _pixel_centres(4, 4))
    matcher = HungarianMatcher(num_points=16, cost_frame_objectness=3.0)
    cost = matcher.cost_matrix(outputs, target, _pixel_centres(4, 4))
    sounding = torch.tensor([0.0, 1.0])  # frames 0 and 1 (frame 2 unannotated)
    for q in range(2):
        bce = torch.nn.functional.binary_cross_entropy_with_logits(
            outputs["pred_frame_objectness"][q, :2], sounding
        )
        assert cost[q, 0].item() == pytest.approx(plain[q, 0].item() + 3.0 * bce.item(), rel=1e-5)
    rows, _ = matcher({k: v[None] for k, v in outputs.items()}, [target])[0]
    assert rows.tolist() == [1]
