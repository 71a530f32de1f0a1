"""Loss and cost functions on inputs where every term matters (from mutation testing,
docs/TESTING.md): overlapping masks for dice, empty point sets, clip order in a batch,
deep-supervision values and buffers kept out of checkpoints."""

import math

import pytest
import torch

from ovavss_d2.modeling.criterion import OVAVSSSetCriterion, dice_loss
from ovavss_d2.modeling.matcher import HungarianMatcher, batch_dice_cost, batch_sigmoid_ce_cost

# sigmoid(log 3) = 3/4, sigmoid(-log 3) = 1/4, sigmoid(0) = 1/2
L3 = math.log(3.0)
LOGITS = torch.tensor([[L3, -L3, 0.0], [0.0, L3, L3]])  # (M=2, P=3)
TARGETS = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])


def test_dice_loss_with_overlap_hand_computed():
    # row 0: X = (3/4, 1/4, 1/2): 2|XY| = 2 (3/4 + 1/2) = 5/2, |X| + |Y| = 3/2 + 2 = 7/2
    # row 1: X = (1/2, 3/4, 3/4): 2|XY| = 3, |X| + |Y| = 2 + 2 = 4
    expected = ((1 - 3.5 / 4.5) + (1 - 4 / 5)) / 2.0
    assert dice_loss(LOGITS, TARGETS, 2.0).item() == pytest.approx(expected)


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


def _criterion():
    weights = {"loss_objectness": 2.0, "loss_class": 2.0, "loss_mask": 5.0, "loss_dice": 5.0}
    return OVAVSSSetCriterion(
        num_classes=3,
        matcher=HungarianMatcher(num_points=64),
        weight_dict=weights,
        eos_coef=0.1,
        losses=("objectness", "labels", "masks"),
        num_points=64,
    )


def _outputs(seed):
    g = torch.Generator().manual_seed(seed)
    return {
        "pred_objectness": torch.randn(2, 3, 2, generator=g),
        "pred_logits": torch.randn(2, 3, 4, generator=g),
        "pred_masks": torch.randn(2, 3, 2, 4, 4, generator=g),
    }


def _target(labels):
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
    crit = _criterion()
    out = _outputs(0)
    torch.manual_seed(0)
    both = crit(out, [_target([]), _target([0, 2])])
    assert both["loss_mask"].item() > 0.05 and both["loss_dice"].item() > 0.05
    # the same second clip alone (batch of 1): same mask losses (same normaliser: 2 masks)
    alone = {k: v[1:] for k, v in out.items()}
    torch.manual_seed(0)
    single = crit(alone, [_target([0, 2])])
    assert both["loss_dice"].item() == pytest.approx(single["loss_dice"].item(), rel=1e-5)


def test_deep_supervision_values_are_the_losses_of_each_layer():
    crit = _criterion()
    out, aux = _outputs(0), _outputs(1)
    targets = [_target([1]), _target([0, 2])]
    torch.manual_seed(0)
    with_aux = crit(dict(out, aux_outputs=[aux]), targets)
    torch.manual_seed(0)
    crit(out, targets)  # the main layer draws its random points first
    aux_alone = crit(aux, targets)
    for key in ("loss_objectness", "loss_class", "loss_dice"):
        assert with_aux[f"{key}_0"].item() == pytest.approx(aux_alone[key].item(), rel=1e-5), key


def test_criterion_keeps_its_settings_and_no_buffer_in_checkpoints():
    crit = _criterion()
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
    out = _outputs(0)
    out["pred_logits"] = torch.randn(2, 3, 6)  # K+1 = 4 expected
    with pytest.raises(ValueError, match=r"^pred_logits has 6 classes, the criterion expects "):
        _criterion()(out, [_target([0]), _target([1])])
