"""The solver and --eval-only option checks of train_net.py (ovavss_d2/utils/train_checks.py),
on values as the config chain and the command line give them (issue 18)."""

import pytest

from ovavss_d2 import get_cfg
from ovavss_d2.utils.train_checks import D2_SOLVER_DEFAULTS, literal, training_option_problem


def _problem(values, eval_only=False, resuming=False, world_size=1):
    return training_option_problem(
        values.get, eval_only=eval_only, resuming=resuming, world_size=world_size
    )


def test_defaults_are_the_configs():
    cfg = get_cfg()
    for key, value in D2_SOLVER_DEFAULTS.items():
        node = cfg
        for part in key.split("."):
            node = node[part]
        assert node == (tuple(value) if isinstance(node, tuple) else value), key


def test_literal_reads_values_as_yacs_does():
    assert literal("(30,)") == (30,)
    assert literal("0") == 0
    assert literal("output/model_final.pth") == "output/model_final.pth"
    assert literal(7) == 7


GOOD = {"DATASETS.TRAIN": "('a',)", "SOLVER.MAX_ITER": 40, "SOLVER.STEPS": "(30,)"}


@pytest.mark.parametrize(
    "values, world_size, fragment",
    [
        ({"SOLVER.IMS_PER_BATCH": 0}, 1, "SOLVER.IMS_PER_BATCH 0: must be at least 1"),
        ({"SOLVER.IMS_PER_BATCH": 6}, 4, "SOLVER.IMS_PER_BATCH 6: not divisible by the 4"),
        (
            {"SOLVER.IMS_PER_BATCH": 3, "SOLVER.REFERENCE_WORLD_SIZE": 2},
            8,
            "SOLVER.IMS_PER_BATCH 3: not divisible by SOLVER.REFERENCE_WORLD_SIZE 2 (the total "
            "batch of the reference run, the same share per process): set SOLVER.IMS_PER_BATCH "
            "to 2 x the clips per GPU, e.g. 2",
        ),
        ({"SOLVER.REFERENCE_WORLD_SIZE": -1}, 1, "SOLVER.REFERENCE_WORLD_SIZE -1: must be 0"),
        (
            {"SOLVER.MAX_ITER": 1, "SOLVER.STEPS": "()", "SOLVER.REFERENCE_WORLD_SIZE": "1"},
            2,
            "SOLVER.MAX_ITER 1: scaled from SOLVER.REFERENCE_WORLD_SIZE 1 to 2 processes it is 0 "
            "iterations: set SOLVER.MAX_ITER to at least 2",
        ),
        ({"SOLVER.MAX_ITER": -1}, 1, "SOLVER.MAX_ITER -1: must be at least 1"),
        ({"SOLVER.BASE_LR": -1e-4}, 1, "SOLVER.BASE_LR -0.0001: must not be negative"),
        ({"SOLVER.BASE_LR": float("inf")}, 1, "SOLVER.BASE_LR inf: not a finite number"),
        ({"SOLVER.STEPS": "(0, 10)"}, 1, "SOLVER.STEPS (0, 10): the iterations where"),
        ({"SOLVER.STEPS": "(10, 10)"}, 1, "SOLVER.STEPS (10, 10): must be strictly increasing"),
        ({"SOLVER.STEPS": [40]}, 1, "SOLVER.STEPS (40,): steps at or beyond SOLVER.MAX_ITER 40"),
        ({"DATASETS.TRAIN": "()"}, 1, "DATASETS.TRAIN: empty, nothing to train on"),
    ],
)
def test_bad_training_options(values, world_size, fragment):
    assert fragment in _problem({**GOOD, **values}, world_size=world_size)


def test_good_training_options():
    assert _problem(GOOD) is None
    assert _problem({**GOOD, "SOLVER.IMS_PER_BATCH": 8}, world_size=4) is None
    # A config written for 1 process scales to any number (auto_scale_workers): 1 clip each.
    scaled = {**GOOD, "SOLVER.IMS_PER_BATCH": 1, "SOLVER.REFERENCE_WORLD_SIZE": 1}
    assert _problem(scaled, world_size=8) is None
    assert _problem({**scaled, "SOLVER.MAX_ITER": 2, "SOLVER.STEPS": "()"}, world_size=2) is None
    assert _problem({**scaled, "SOLVER.IMS_PER_BATCH": 6, "SOLVER.REFERENCE_WORLD_SIZE": 3}) is None
    assert _problem({**GOOD, "SOLVER.STEPS": "()"}) is None
    assert _problem({**GOOD, "SOLVER.BASE_LR": 0}) is None
    # Steps are read by the multi-step schedule only.
    assert _problem({**GOOD, "SOLVER.STEPS": "(50,)", "SOLVER.LR_SCHEDULER_NAME": "X"}) is None
    # A value of the wrong type is left to the config merge, which names the key.
    assert _problem({**GOOD, "SOLVER.IMS_PER_BATCH": "two"}) is None


def test_eval_only():
    test = {"DATASETS.TEST": "('avss_synth_test',)"}
    assert "MODEL.WEIGHTS is empty" in _problem(test, eval_only=True)
    assert _problem(test, eval_only=True, resuming=True) is None  # weights of last_checkpoint
    weights = {**test, "MODEL.WEIGHTS": "model_final.pth"}
    assert _problem(weights, eval_only=True) is None
    # The solver is not checked when evaluating only.
    assert _problem({**weights, "SOLVER.IMS_PER_BATCH": 0}, eval_only=True) is None
    nothing = {**weights, "DATASETS.TEST": "()"}
    assert "DATASETS.TEST is empty, nothing to evaluate" in _problem(nothing, eval_only=True)
    assert "DATASETS.TEST is empty" in _problem({"MODEL.WEIGHTS": "w.pth"}, eval_only=True)
