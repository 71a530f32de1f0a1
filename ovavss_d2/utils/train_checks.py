"""Checks of train_net.py's training and evaluation options, before torch is imported.

Standard library only: ``preflight.check_training_args`` calls :func:`training_option_problem`
with a getter of config values (config chain and command line), so that a batch of 0 clips, a
negative iteration count or an ``--eval-only`` with nothing to evaluate ends in one line within a
second instead of a traceback, a silent no-op or a loader that never yields (docs/RELIABILITY.md).
"""

import ast
import math
from typing import Any, Callable, Optional

__all__ = ["D2_SOLVER_DEFAULTS", "literal", "training_option_problem"]

# Defaults (Detectron2 0.6's, and ovavss_d2's MODEL.ALLOW_UNTRAINED) of the keys checked here, used
# when neither the config chain nor the command line sets them (tests/utils/test_train_checks.py
# compares them with ovavss_d2.get_cfg()).
D2_SOLVER_DEFAULTS = {
    "SOLVER.IMS_PER_BATCH": 16,
    "SOLVER.MAX_ITER": 40000,
    "SOLVER.BASE_LR": 0.001,
    "SOLVER.STEPS": (30000,),
    "SOLVER.LR_SCHEDULER_NAME": "WarmupMultiStepLR",
    "SOLVER.REFERENCE_WORLD_SIZE": 0,
    "DATASETS.TRAIN": (),
    "DATASETS.TEST": (),
    "MODEL.WEIGHTS": "",
    "MODEL.ALLOW_UNTRAINED": False,
}


def literal(value: Any) -> Any:
    """A config value as the config would hold it: strings such as ``"(30,)"`` or ``"0"`` are
    Python literals to yacs (``ast.literal_eval``); other strings stay strings."""
    if isinstance(value, str):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return value
    return value


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _names(x: Any) -> Optional[tuple]:
    """A tuple of dataset names, or None for a value of another type (reported later)."""
    if isinstance(x, str):
        return (x,) if x else ()
    if isinstance(x, (list, tuple)):
        return tuple(x)
    return None


def _batch_problem(batch: Any, reference: Any, max_iter: Any, world_size: int) -> Optional[str]:
    """The problem of the total batch ``batch`` of a run with ``world_size`` processes, or None.

    With ``SOLVER.REFERENCE_WORLD_SIZE`` R > 0, Detectron2's ``DefaultTrainer.auto_scale_workers``
    rescales the config written for R processes: clips per process ``batch / R`` stay, the total
    batch and the learning rate grow by ``world_size / R``, iterations shrink by it. With R = 0
    the config is used as written and ``batch`` is split over the processes.
    """
    if not _is_int(batch):
        return None
    if batch < 1:
        return (
            f"SOLVER.IMS_PER_BATCH {batch}: must be at least 1 (clips per iteration, summed "
            "over all processes)"
        )
    if not _is_int(reference):
        return None
    if reference < 0:
        return (
            f"SOLVER.REFERENCE_WORLD_SIZE {reference}: must be 0 (use the config as written) or "
            "the number of processes SOLVER.IMS_PER_BATCH was written for"
        )
    if reference > 0:
        if batch % reference:
            return (
                f"SOLVER.IMS_PER_BATCH {batch}: not divisible by SOLVER.REFERENCE_WORLD_SIZE "
                f"{reference} (the total batch of the reference run, the same share per "
                f"process): set SOLVER.IMS_PER_BATCH to {reference} x the clips per GPU, e.g. "
                f"{reference * max(1, batch // reference)}"
            )
        if _is_int(max_iter) and max_iter >= 1 and round(max_iter * reference / world_size) < 1:
            return (
                f"SOLVER.MAX_ITER {max_iter}: scaled from SOLVER.REFERENCE_WORLD_SIZE {reference} "
                f"to {world_size} processes it is 0 iterations: set SOLVER.MAX_ITER to at least "
                f"{world_size // (2 * reference) + 1}"
            )
        return None
    if world_size > 1 and batch % world_size:
        return (
            f"SOLVER.IMS_PER_BATCH {batch}: not divisible by the {world_size} processes "
            f"(--num-gpus x --num-machines), and SOLVER.REFERENCE_WORLD_SIZE is 0 (no rescaling): "
            f"set SOLVER.IMS_PER_BATCH to a multiple of {world_size}, or "
            "SOLVER.REFERENCE_WORLD_SIZE to the number of processes the config was written for "
            "(batch, learning rate and schedule then scale with --num-gpus)"
        )
    return None


def training_option_problem(
    value: Callable[[str], Any], *, eval_only: bool, resuming: bool, world_size: int
) -> Optional[str]:
    """The first problem of the solver / evaluation options, as one line, or None.

    Values of an unexpected type are left to the config merge, which reports them.

    Args:
        value: ``key -> value`` of the config chain and command line (None: not set there).
        eval_only: ``--eval-only``.
        resuming: ``--resume`` with a ``last_checkpoint`` in OUTPUT_DIR (the weights come from it).
        world_size: processes over all machines (``--num-gpus`` x ``--num-machines``).
    """

    def get(key: str) -> Any:
        got = value(key)
        return literal(D2_SOLVER_DEFAULTS[key] if got is None else got)

    if eval_only:
        weights = get("MODEL.WEIGHTS")
        untrained = isinstance(weights, str) and not weights.strip() and not resuming
        if untrained and get("MODEL.ALLOW_UNTRAINED") is not True:
            return (
                "--eval-only: MODEL.WEIGHTS is empty, so an untrained model would be evaluated: "
                "add MODEL.WEIGHTS <model_final.pth> (or --resume with an OUTPUT_DIR that holds "
                "last_checkpoint, or set MODEL.ALLOW_UNTRAINED True to evaluate it untrained)"
            )
        if _names(get("DATASETS.TEST")) == ():
            return (
                "--eval-only: DATASETS.TEST is empty, nothing to evaluate: add DATASETS.TEST "
                "\"('<dataset>',)\" (e.g. avss_synth_test)"
            )
        return None

    if _names(get("DATASETS.TRAIN")) == ():
        return "DATASETS.TRAIN: empty, nothing to train on: name at least one dataset"
    batch = get("SOLVER.IMS_PER_BATCH")
    max_iter = get("SOLVER.MAX_ITER")
    problem = _batch_problem(batch, get("SOLVER.REFERENCE_WORLD_SIZE"), max_iter, world_size)
    if problem:
        return problem
    if _is_int(max_iter) and max_iter < 1:
        return (
            f"SOLVER.MAX_ITER {max_iter}: must be at least 1 (training iterations); --eval-only "
            "evaluates without training"
        )
    lr = get("SOLVER.BASE_LR")
    if isinstance(lr, (int, float)) and not isinstance(lr, bool):
        if not math.isfinite(lr):
            return f"SOLVER.BASE_LR {lr}: not a finite number"
        if lr < 0:
            return f"SOLVER.BASE_LR {lr}: must not be negative"
    steps = get("SOLVER.STEPS")
    if (
        get("SOLVER.LR_SCHEDULER_NAME") == "WarmupMultiStepLR"
        and isinstance(steps, (list, tuple))
        and all(_is_int(s) for s in steps)
    ):
        shown = tuple(steps)
        if any(s < 1 for s in steps):
            return (
                f"SOLVER.STEPS {shown}: the iterations where the learning rate drops must be >= 1"
            )
        if any(a >= b for a, b in zip(steps, steps[1:])):
            return f"SOLVER.STEPS {shown}: must be strictly increasing"
        if _is_int(max_iter) and steps and steps[-1] >= max_iter:
            return (
                f"SOLVER.STEPS {shown}: steps at or beyond SOLVER.MAX_ITER {max_iter}, where the "
                f"run has ended: give steps below {max_iter}, or SOLVER.STEPS ()"
            )
    return None
