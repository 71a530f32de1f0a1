"""OVAVSSSetCriterion: losses against hand-computed values, unannotated frames, empty clips and deep
supervision. Hand-computed mask losses use zero logits against empty targets: point sampling
(bilinear, zero padding at the borders) reads exactly 0 there wherever the points fall."""

import math

import pytest
import torch
import torch.nn.functional as F

from ovavss_d2.modeling.criterion import (
    UNNAMED_LABEL,
    OVAVSSSetCriterion,
    dice_loss,
    frame_objectness_targets,
)
from ovavss_d2.modeling.matcher import HungarianMatcher
from ovavss_d2.utils.host_syncs import HostSyncCounter

K = 3  # training classes


def _criterion(losses=("objectness", "labels", "masks"), eos=0.1, points=50):
    matcher = HungarianMatcher(num_points=points)
    weights = {"loss_objectness": 2.0, "loss_class": 2.0, "loss_mask": 5.0, "loss_dice": 5.0}
    return OVAVSSSetCriterion(
        num_classes=K,
        matcher=matcher,
        weight_dict=weights,
        eos_coef=eos,
        losses=losses,
        num_points=points,
    )


def _outputs(batch=1, queries=2, frames=2, value=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    masks = torch.randn(batch, queries, frames, 4, 4, generator=g)
    if value is not None:
        masks = torch.full_like(masks, value)
    return {
        "pred_objectness": torch.randn(batch, queries, 2, generator=g).requires_grad_(),
        "pred_logits": torch.randn(batch, queries, K + 1, generator=g).requires_grad_(),
        "pred_masks": masks.requires_grad_(),
    }


def _target(labels, frames=2, annotated=None, fill=True):
    n = len(labels)
    return {
        "labels": torch.tensor(labels, dtype=torch.int64),
        "masks": torch.full((n, frames, 8, 8), fill, dtype=torch.bool),
        "annotated": torch.ones(frames, dtype=torch.bool) if annotated is None else annotated,
    }


def test_losses_hand_computed_single_object():
    out = _outputs(value=0.0)
    # Make query 1 the obvious match: high objectness and class probability for label 2.
    with torch.no_grad():
        out["pred_objectness"][0, 1] = torch.tensor([5.0, -5.0])
        out["pred_logits"][0, 1] = torch.tensor([-5.0, -5.0, 5.0, -5.0])
    losses = _criterion()(out, [_target([2], fill=False)])
    # Objectness: query 1 -> class 0 (weight 1), query 0 -> class 1 (no object, weight 0.1).
    obj = out["pred_objectness"][0].detach()
    lo = -F.log_softmax(obj, -1)
    expected_obj = (lo[1, 0] * 1.0 + lo[0, 1] * 0.1) / 1.1
    assert losses["loss_objectness"].item() == pytest.approx(expected_obj.item(), rel=1e-5)
    cls = out["pred_logits"][0].detach()
    lc = -F.log_softmax(cls, -1)
    expected_cls = (lc[1, 2] * 1.0 + lc[0, K] * 0.1) / 1.1
    assert losses["loss_class"].item() == pytest.approx(expected_cls.item(), rel=1e-5)
    # Logit 0 against an empty target on 2 annotated frames, averaged over the 2 pairs.
    assert losses["loss_mask"].item() == pytest.approx(math.log(2), rel=1e-5)
    p = 50
    assert losses["loss_dice"].item() == pytest.approx(1 - 1 / (0.5 * p + 1), rel=1e-5)


def test_unannotated_frames_excluded_and_normaliser():
    annotated = torch.tensor([True, False, False])
    out = _outputs(frames=3, value=0.0)
    with torch.no_grad():
        out["pred_masks"][:, :, 1:] = 20.0  # terrible on unannotated frames: must not matter
    losses = _criterion()(out, [_target([0], frames=3, annotated=annotated, fill=False)])
    assert losses["loss_mask"].item() == pytest.approx(math.log(2), rel=1e-5)


def test_mask_loss_is_a_mean_over_object_frame_pairs():
    """Two objects x two annotated frames with zero logits and empty targets: still log 2 each."""
    out = _outputs(queries=3, value=0.0)
    losses = _criterion()(out, [_target([0, 1], fill=False)])
    assert losses["loss_mask"].item() == pytest.approx(math.log(2), rel=1e-5)
    # Sum over pairs / number of pairs: a second clip with one object keeps the mean.
    out2 = _outputs(batch=2, queries=3, value=0.0)
    losses2 = _criterion()(out2, [_target([0, 1], fill=False), _target([2], fill=False)])
    assert losses2["loss_mask"].item() == pytest.approx(math.log(2), rel=1e-5)


def test_empty_clip_and_gradients():
    out = _outputs(batch=2)
    targets = [_target([]), _target([0, 1])]
    losses = _criterion()(out, targets)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    for key in ("pred_objectness", "pred_logits", "pred_masks"):
        assert out[key].grad is not None and torch.isfinite(out[key].grad).all()


def test_all_clips_empty_gives_zero_mask_losses():
    out = _outputs(batch=1)
    losses = _criterion()(out, [_target([])])
    assert losses["loss_mask"].item() == 0 and losses["loss_dice"].item() == 0
    sum(losses.values()).backward()


def test_deep_supervision_keys_and_subset_of_losses():
    out = _outputs()
    out["aux_outputs"] = [_outputs(seed=1), _outputs(seed=2)]
    losses = _criterion(losses=("objectness", "masks"))(out, [_target([0])])
    assert set(losses) == {
        f"{name}{suffix}"
        for name in ("loss_objectness", "loss_mask", "loss_dice")
        for suffix in ("", "_0", "_1")
    }


def test_wrong_number_of_classes():
    out = _outputs()
    out["pred_logits"] = torch.randn(1, 2, K + 3)
    with pytest.raises(ValueError, match="classes"):
        _criterion()(out, [_target([0])])


def test_unknown_loss_name():
    with pytest.raises(ValueError, match="unknown losses"):
        _criterion(losses=("boxes",))


# -- from test_losses_edges.py: Loss and cost functions on inputs where every term matters (from
# mutation testing, docs/TESTING.md): overlapping masks for dice, empty point sets, clip order in a
# batch, deep-supervision values and buffers kept out of checkpoints.


# sigmoid(log 3) = 3/4, sigmoid(-log 3) = 1/4, sigmoid(0) = 1/2
L3 = math.log(3.0)
LOGITS = torch.tensor([[L3, -L3, 0.0], [0.0, L3, L3]])  # (M=2, P=3)
TARGETS = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])


def test_dice_loss_with_overlap_hand_computed():
    # row 0: X = (3/4, 1/4, 1/2): 2|XY| = 2 (3/4 + 1/2) = 5/2, |X| + |Y| = 3/2 + 2 = 7/2
    # row 1: X = (1/2, 3/4, 3/4): 2|XY| = 3, |X| + |Y| = 2 + 2 = 4
    expected = ((1 - 3.5 / 4.5) + (1 - 4 / 5)) / 2.0
    assert dice_loss(LOGITS, TARGETS, 2.0).item() == pytest.approx(expected)


def _edge_criterion():
    weights = {"loss_objectness": 2.0, "loss_class": 2.0, "loss_mask": 5.0, "loss_dice": 5.0}
    return OVAVSSSetCriterion(
        num_classes=3,
        matcher=HungarianMatcher(num_points=64),
        weight_dict=weights,
        eos_coef=0.1,
        losses=("objectness", "labels", "masks"),
        num_points=64,
    )


def _edge_outputs(seed):
    g = torch.Generator().manual_seed(seed)
    return {
        "pred_objectness": torch.randn(2, 3, 2, generator=g),
        "pred_logits": torch.randn(2, 3, 4, generator=g),
        "pred_masks": torch.randn(2, 3, 2, 4, 4, generator=g),
    }


def _edge_target(labels):
    masks = torch.zeros(len(labels), 2, 8, 8, dtype=torch.bool)
    for i in range(len(labels)):
        masks[i, :, 2 * i : 2 * i + 4, 1:6] = True
    return {
        "labels": torch.tensor(labels, dtype=torch.int64),
        "masks": masks,
        "annotated": torch.ones(2, dtype=torch.bool),
    }


def test_mask_losses_read_every_clip_after_an_empty_one():
    """An empty first clip must not stop the mask losses from reading the second clip."""
    crit = _edge_criterion()
    out = _edge_outputs(0)
    torch.manual_seed(0)
    both = crit(out, [_edge_target([]), _edge_target([0, 2])])
    assert both["loss_mask"].item() > 0.05 and both["loss_dice"].item() > 0.05
    # the same second clip alone (batch of 1): same mask losses (same normaliser: 2 masks)
    alone = {k: v[1:] for k, v in out.items()}
    torch.manual_seed(0)
    single = crit(alone, [_edge_target([0, 2])])
    assert both["loss_dice"].item() == pytest.approx(single["loss_dice"].item(), rel=1e-5)


def test_deep_supervision_values_are_the_losses_of_each_layer():
    crit = _edge_criterion()
    out, aux = _edge_outputs(0), _edge_outputs(1)
    targets = [_edge_target([1]), _edge_target([0, 2])]
    torch.manual_seed(0)
    with_aux = crit(dict(out, aux_outputs=[aux]), targets)
    torch.manual_seed(0)
    crit(out, targets)  # the main layer draws its random points first
    aux_alone = crit(aux, targets)
    for key in ("loss_objectness", "loss_class", "loss_dice"):
        assert with_aux[f"{key}_0"].item() == pytest.approx(aux_alone[key].item(), rel=1e-5), key


def test_criterion_keeps_its_settings_and_no_buffer_in_checkpoints():
    crit = _edge_criterion()
    assert crit.weight_dict == {
        "loss_objectness": 2.0,
        "loss_class": 2.0,
        "loss_mask": 5.0,
        "loss_dice": 5.0,
    }
    assert crit.eos_coef == 0.1
    assert crit.state_dict() == {}  # class weights are rebuilt from the config, never loaded
    torch.testing.assert_close(crit.objectness_weight, torch.tensor([1.0, 0.1]))


def test_wrong_class_count_names_both_counts():
    out = _edge_outputs(0)
    out["pred_logits"] = torch.randn(2, 3, 6)  # K+1 = 4 expected
    with pytest.raises(ValueError, match=r"^pred_logits has 6 classes, the criterion expects "):
        _edge_criterion()(out, [_edge_target([0]), _edge_target([1])])


# -- issue 19: the same losses with fewer host syncs


def _golden_inputs(device):
    """3 clips x 6 queries x 3 frames, 2 aux layers; clip 1 has no object and clip 2 an
    unannotated first frame. Targets as ``prepare_targets`` leaves them: ``annotated`` on the
    host, the rest on ``device``."""
    g = torch.Generator().manual_seed(7)

    def layer():
        return {
            "pred_objectness": torch.randn(3, 6, 2, generator=g).to(device),
            "pred_logits": torch.randn(3, 6, 5, generator=g).to(device),
            "pred_masks": (torch.randn(3, 6, 3, 8, 8, generator=g) * 2).to(device),
        }

    outputs = layer()
    outputs["aux_outputs"] = [layer(), layer()]
    targets = []
    for n, annotated in [
        (2, [True, True, True]),
        (0, [True, False, False]),
        (3, [False, True, True]),
    ]:
        targets.append(
            {
                "labels": torch.randint(0, 4, (n,), generator=g).to(device),
                "masks": (torch.rand(n, 3, 16, 16, generator=g) > 0.6).to(device),
                "annotated": torch.tensor(annotated),
            }
        )
    return outputs, targets


def _golden_criterion():
    weights = {"loss_objectness": 2.0, "loss_class": 2.0, "loss_mask": 5.0, "loss_dice": 5.0}
    return OVAVSSSetCriterion(
        num_classes=4,
        matcher=HungarianMatcher(num_points=40),
        weight_dict=weights,
        eos_coef=0.1,
        num_points=30,
    )


# The losses of _golden_inputs("cpu") after torch.manual_seed(3), computed by the criterion and
# matcher of commit 1f2d781 (before issue 19: one cost download and blocking index copies per clip).
GOLDEN = {
    "loss_class": 1.5654041767120361,
    "loss_class_0": 1.433957576751709,
    "loss_class_1": 1.0910872220993042,
    "loss_dice": 0.5371100306510925,
    "loss_dice_0": 0.5381895303726196,
    "loss_dice_1": 0.5452457070350647,
    "loss_mask": 0.7497038245201111,
    "loss_mask_0": 0.745685338973999,
    "loss_mask_1": 0.7435801029205322,
    "loss_objectness": 0.41355517506599426,
    "loss_objectness_0": 0.7596625685691833,
    "loss_objectness_1": 1.0702370405197144,
}


def test_losses_unchanged_by_the_sync_free_criterion():
    outputs, targets = _golden_inputs("cpu")
    torch.manual_seed(3)
    losses = _golden_criterion()(outputs, targets)
    assert {k: v.item() for k, v in losses.items()} == pytest.approx(GOLDEN, rel=1e-6, abs=0)
    torch.manual_seed(3)
    main = {k: v for k, v in outputs.items() if k != "aux_outputs"}
    indices = _golden_criterion().matcher(main, targets)
    assert [(r.tolist(), c.tolist()) for r, c in indices] == [
        ([1, 4], [1, 0]),
        ([], []),
        ([2, 3, 5], [2, 1, 0]),
    ]


def test_losses_with_precomputed_frames_are_the_same(device):
    """``frames`` from ``prepare_targets`` (on the device) and ``annotated`` alone agree."""
    outputs, targets = _golden_inputs(device)
    torch.manual_seed(3)
    plain = _golden_criterion()(outputs, targets)
    for t in targets:
        t["frames"] = t["annotated"].nonzero(as_tuple=True)[0].to(device)
    torch.manual_seed(3)
    with_frames = _golden_criterion()(outputs, targets)
    assert plain.keys() == with_frames.keys()
    assert all(torch.equal(plain[k], with_frames[k]) for k in plain)


def test_one_download_per_decoder_layer(device):
    """Three matched layers (main + 2 aux): three downloads of matching costs, nothing else that
    waits for the device (the object count is taken on the host, indices are made on the
    device)."""
    outputs, targets = _golden_inputs(device)
    for t in targets:
        t["frames"] = t["annotated"].nonzero(as_tuple=True)[0].to(device, non_blocking=True)
    criterion = _golden_criterion().to(device)
    counter = HostSyncCounter(torch.device(device))
    counter.mark_host([t["annotated"] for t in targets])
    with counter:
        losses = criterion(outputs, targets)
        assert len(losses) == 12
    assert dict(counter.counts) == {"Tensor.cpu": 3}, "\n".join(map(str, counter.sites))


# -- issue 17: unnamed foreground (label UNNAMED_LABEL): objectness and masks, no class loss


def _three_ways(seed=11, queries=5):
    """Losses and matches of one clip whose second object is named (label 2), unnamed or removed,
    with a matcher without class cost, so that named and unnamed objects take the same query.
    Masks differ per object; every frame is annotated."""
    g = torch.Generator().manual_seed(seed)
    masks = torch.rand(2, 2, 8, 8, generator=g) > 0.5
    matcher = HungarianMatcher(cost_class=0.0, num_points=30)
    weights = {"loss_objectness": 2.0, "loss_class": 2.0, "loss_mask": 5.0, "loss_dice": 5.0}
    criterion = OVAVSSSetCriterion(
        num_classes=K, matcher=matcher, weight_dict=weights, eos_coef=0.1, num_points=30
    )
    results = {}
    for case, labels in (("named", [0, 2]), ("unnamed", [0, UNNAMED_LABEL]), ("removed", [0])):
        out = _outputs(queries=queries, seed=seed)
        target = {
            "labels": torch.tensor(labels, dtype=torch.int64),
            "masks": masks[: len(labels)],
            "annotated": torch.ones(2, dtype=torch.bool),
        }
        torch.manual_seed(0)
        indices = matcher(out, [target])
        torch.manual_seed(0)
        losses = criterion(out, [target])
        sum(losses.values()).backward()
        results[case] = (out, losses, indices[0])
    return results


def test_unnamed_object_has_no_class_term_but_objectness_and_mask_terms():
    results = _three_ways()
    named_out, named, (rows, cols) = results["named"]
    out, unnamed, (u_rows, u_cols) = results["unnamed"]
    assert torch.equal(rows, u_rows) and torch.equal(cols, u_cols)
    query = rows[cols == 1].item()  # the query matched to the second object
    # Objectness and masks: exactly as if the object were named.
    for key in ("loss_objectness", "loss_mask", "loss_dice"):
        assert torch.equal(unnamed[key], named[key]), key
    for key in ("pred_objectness", "pred_masks"):
        assert torch.equal(out[key].grad, named_out[key].grad), key
    assert out["pred_masks"].grad[0, query].abs().sum() > 0
    # Class loss: the query takes no part (no gradient, not even towards background) ...
    assert not out["pred_logits"].grad[0, query].any()
    assert named_out["pred_logits"].grad[0, query].abs().sum() > 0
    # ... and the others' weighted mean is the loss: the first object's class, background else.
    logits = out["pred_logits"][0].detach()
    target = torch.full((logits.shape[0],), K)
    target[rows[cols == 0]] = 0
    keep = torch.arange(logits.shape[0]) != query
    weight = torch.tensor([1.0] * K + [0.1])
    expected = F.cross_entropy(logits[keep], target[keep], weight)
    torch.testing.assert_close(unnamed["loss_class"], expected, rtol=1e-6, atol=0)
    assert unnamed["loss_class"] != named["loss_class"]


def test_unnamed_object_still_counts_unlike_a_removed_one():
    """Removing the object would make its query "no object" and drop its masks."""
    results = _three_ways()
    _, unnamed, _ = results["unnamed"]
    removed_out, removed, (rows, _) = results["removed"]
    assert unnamed["loss_objectness"] != removed["loss_objectness"]
    assert unnamed["loss_mask"] != removed["loss_mask"]
    out, _, (u_rows, u_cols) = results["unnamed"]
    query = u_rows[u_cols == 1].item()
    assert query not in rows.tolist()  # removed: the query is unmatched, background in the class
    assert removed_out["pred_logits"].grad[0, query].abs().sum() > 0  # loss; unnamed: no term
    assert not out["pred_logits"].grad[0, query].any()


def test_clip_of_unnamed_objects_only_trains():
    out = _outputs(batch=2, queries=4)
    targets = [_target([UNNAMED_LABEL, UNNAMED_LABEL]), _target([UNNAMED_LABEL])]
    targets[0]["masks"][1, :, :4] = False  # two different masks
    losses = _criterion()(out, targets)
    assert all(torch.isfinite(v) for v in losses.values()), losses
    assert losses["loss_class"] > 0  # the unmatched queries still learn background
    sum(losses.values()).backward()
    for key in ("pred_objectness", "pred_logits", "pred_masks"):
        assert torch.isfinite(out[key].grad).all()
    assert out["pred_masks"].grad.abs().sum() > 0 and out["pred_objectness"].grad.abs().sum() > 0


def test_named_labels_give_the_class_loss_of_before_bit_for_bit(device):
    """Without unnamed objects the class loss is the plain weighted cross-entropy of before the
    unnamed label (no ignore_index), to the bit."""
    outputs, targets = _golden_inputs(device)
    criterion = _golden_criterion().to(device)
    main = {k: v for k, v in outputs.items() if k != "aux_outputs"}
    torch.manual_seed(3)
    indices = criterion.matcher(main, targets)
    loss = criterion.loss_labels(main, targets, indices, 1.0)["loss_class"]
    logits = main["pred_logits"].float()
    target = torch.full(logits.shape[:2], 4, dtype=torch.int64, device=device)
    for b, ((rows, cols), t) in enumerate(zip(indices, targets)):
        target[b, rows] = t["labels"][cols]
    before = F.cross_entropy(logits.transpose(1, 2), target, criterion.class_weight.to(logits))
    assert torch.equal(loss, before)


# -- per-frame sounding (MODEL.OVAVSS.PER_FRAME_OBJECTNESS) ------------------------------------


def test_frame_objectness_targets_from_masks():
    """Object 0 is labelled in frames 2-4 only (silent before): targets 0, 0, 1, 1, 1; object 1
    in every frame; unmatched queries silent; frame 1 unannotated: weight 0 everywhere."""
    masks = torch.zeros(2, 5, 4, 4, dtype=torch.bool)
    masks[0, 2:, 1:3, 1:3] = True
    masks[1, :, 0, 0] = True
    annotated = torch.tensor([True, False, True, True, True])
    target = {"labels": torch.tensor([0, 1]), "masks": masks, "annotated": annotated}
    indices = [(torch.tensor([3, 1]), torch.tensor([0, 1]))]  # query 3 <- object 0
    tgt, weight = frame_objectness_targets(indices, [target], 4, 5, 0.1, torch.device("cpu"))
    assert tgt.shape == weight.shape == (1, 4, 5)
    assert tgt[0, 3].tolist() == [0, 0, 1, 1, 1]
    assert tgt[0, 1].tolist() == [1, 1, 1, 1, 1]
    assert not tgt[0, [0, 2]].any()  # unmatched: silent in every frame
    assert weight[0, 3].tolist() == [1, 0, 1, 1, 1]
    torch.testing.assert_close(weight[0, 0], torch.tensor([0.1, 0.0, 0.1, 0.1, 0.1]))


def test_frame_objectness_loss_hand_computed():
    out = _outputs(value=0.0, queries=2, frames=3)
    logits = torch.tensor([[[2.0, -1.0, 0.5], [-3.0, 1.0, 0.0]]], requires_grad=True)
    out["pred_frame_objectness"] = logits
    with torch.no_grad():  # query 1 is the match
        out["pred_objectness"][0, 1] = torch.tensor([5.0, -5.0])
        out["pred_logits"][0, 1] = torch.tensor([-5.0, -5.0, 5.0, -5.0])
    target = _target([2], frames=3, annotated=torch.tensor([True, True, False]))
    target["masks"][:, 0] = False  # silent in frame 0, sounding in 1 (frame 2 unannotated)
    losses = _criterion(losses=("objectness", "labels", "frame_objectness"))(out, [target])
    bce = F.binary_cross_entropy_with_logits
    x = logits.detach()[0]
    terms = [  # (value, weight): query 1 matched (weight 1), query 0 silent (weight 0.1)
        (bce(x[1, 0], torch.tensor(0.0)), 1.0),
        (bce(x[1, 1], torch.tensor(1.0)), 1.0),
        (bce(x[0, 0], torch.tensor(0.0)), 0.1),
        (bce(x[0, 1], torch.tensor(0.0)), 0.1),
    ]
    expected = sum(v * w for v, w in terms) / sum(w for _, w in terms)
    assert losses["loss_frame_objectness"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_frame_objectness_loss_zero_gradient_safe():
    """No object and no annotated frame anywhere: a finite 0 that still reaches the logits."""
    out = _outputs(batch=2, frames=3)
    out["pred_frame_objectness"] = torch.randn(2, 2, 3).requires_grad_()
    none = torch.zeros(3, dtype=torch.bool)
    targets = [_target([], frames=3, annotated=none), _target([], frames=3, annotated=none)]
    loss = _criterion(losses=("frame_objectness",))(out, targets)["loss_frame_objectness"]
    assert loss.item() == 0.0
    loss.backward()
    assert out["pred_frame_objectness"].grad is not None
    assert torch.equal(out["pred_frame_objectness"].grad, torch.zeros(2, 2, 3))


def test_frame_objectness_loss_without_a_sync(device):
    out = {k: v.detach().to(device) for k, v in _outputs(batch=2, frames=3).items()}
    out["pred_frame_objectness"] = torch.randn(2, 2, 3, device=device)
    targets = [_target([1], frames=3), _target([], frames=3)]
    targets = [{k: v.to(device) if k != "annotated" else v for k, v in t.items()} for t in targets]
    for t in targets:  # uploaded once per step by prepare_targets
        t["frames"] = t["annotated"].nonzero(as_tuple=True)[0].to(device)
    indices = [(torch.tensor([1], device=device), torch.tensor([0], device=device))] + [
        (torch.zeros(0, dtype=torch.int64, device=device),) * 2
    ]
    criterion = _criterion(losses=("frame_objectness",)).to(device)
    counter = HostSyncCounter(torch.device(device))
    counter.mark_host([t["annotated"] for t in targets])
    with counter:
        criterion.loss_frame_objectness(out, targets, indices, 1.0)
    assert dict(counter.counts) == {}, counter.sites
