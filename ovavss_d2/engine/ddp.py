"""DistributedDataParallel without unused parameters: what a config's losses leave untrained.

DDP expects every trainable parameter to get a gradient in every iteration; Detectron2 0.6's
``DefaultTrainer`` builds it without ``find_unused_parameters``, so a head that no loss reaches
(``MODEL.OVAVSS.CLASS_WEIGHT 0`` leaves ``transformer_decoder.embed_head`` untrained) stops a
multi-process run at its second iteration. :func:`ddp_plan` reads the loss weights: a head that no
loss trains is frozen (one process would leave it untouched too: the optimizer skips parameters
without a gradient, so nothing else changes and checkpoints keep their keys), and
``find_unused_parameters`` is asked for only where freezing a head is not enough (no mask loss:
the pixel decoder's mask features go untrained too).
"""

import contextlib
import functools
from dataclasses import dataclass
from typing import Iterator, Tuple

from detectron2.config import CfgNode
from detectron2.engine import defaults as d2_defaults
from torch import nn

__all__ = ["DDPPlan", "ddp_plan", "ddp_options", "freeze_modules"]

# OV-AVSS heads (module names in the model) and the loss weight that trains each alone.
HEAD_LOSS_WEIGHTS = {
    "transformer_decoder.objectness_head": "OBJECTNESS_WEIGHT",
    "transformer_decoder.embed_head": "CLASS_WEIGHT",
}
# Heads that exist only when a config key builds them: key -> (module, loss weight).
OPTIONAL_HEAD_LOSS_WEIGHTS = {
    "PER_FRAME_OBJECTNESS": (
        "transformer_decoder.frame_objectness_head",
        "FRAME_OBJECTNESS_WEIGHT",
    ),
}
# The mask losses: with both at 0 the mask head and the pixel decoder's mask branch are unused.
MASK_LOSS_WEIGHTS = ("MASK_WEIGHT", "DICE_WEIGHT")


@dataclass(frozen=True)
class DDPPlan:
    """How a config's model is made safe for DDP.

    Attributes:
        frozen: module names whose parameters are frozen (no loss of the config trains them).
        find_unused_parameters: DDP must look for parameters left without a gradient.
        reason: which loss weights led to the plan (config keys and values).
    """

    frozen: Tuple[str, ...] = ()
    find_unused_parameters: bool = False
    reason: str = ""

    def describe(self) -> str:
        """The plan as one log line."""
        frozen = ", ".join(self.frozen) if self.frozen else "none"
        why = f" ({self.reason})" if self.reason else ""
        return (
            f"DDP plan: frozen heads (no loss trains them): {frozen}; "
            f"find_unused_parameters {self.find_unused_parameters}{why}"
        )


def ddp_plan(cfg: CfgNode) -> DDPPlan:
    """The heads of ``cfg``'s model that no loss trains, and whether DDP must find unused
    parameters. Meta-architectures other than OVAVSS build no head without a loss (TPAVI's crop
    branch exists only with a crop-loss weight > 0): nothing to do for them."""
    if cfg.MODEL.META_ARCHITECTURE != "OVAVSS":
        return DDPPlan()
    ov = cfg.MODEL.OVAVSS
    heads = dict(HEAD_LOSS_WEIGHTS)
    heads.update(dict(head for built, head in OPTIONAL_HEAD_LOSS_WEIGHTS.items() if ov[built]))
    zero = [key for key in (*heads.values(), *MASK_LOSS_WEIGHTS) if ov[key] <= 0]
    frozen = tuple(name for name, key in heads.items() if key in zero)
    no_masks = all(key in zero for key in MASK_LOSS_WEIGHTS)
    reason = ", ".join(f"MODEL.OVAVSS.{key} {ov[key]}" for key in zero)
    return DDPPlan(frozen=frozen, find_unused_parameters=no_masks, reason=reason)


def freeze_modules(model: nn.Module, names: Tuple[str, ...]) -> None:
    """``requires_grad False`` on every parameter of the named submodules of ``model``.

    Raises:
        KeyError: a name that is no submodule of ``model``.
    """
    modules = dict(model.named_modules())
    for name in names:
        if name not in modules:
            raise KeyError(f"{name}: no such module in {type(model).__name__} (DDP plan)")
        modules[name].requires_grad_(False)


@contextlib.contextmanager
def ddp_options(**kwargs) -> Iterator[None]:
    """Within: Detectron2's ``create_ddp_model`` adds ``kwargs`` to its DDP arguments.

    ``DefaultTrainer.__init__`` calls ``create_ddp_model(model, broadcast_buffers=False)`` with no
    way to pass other arguments; building the trainer inside this block gives it e.g.
    ``find_unused_parameters`` without wrapping the model twice.
    """
    original = d2_defaults.create_ddp_model
    d2_defaults.create_ddp_model = functools.partial(original, **kwargs)
    try:
        yield
    finally:
        d2_defaults.create_ddp_model = original
