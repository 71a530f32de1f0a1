"""Optimizer of ovavss_d2 models (``SOLVER.*``): AdamW or SGD with a backbone learning-rate
multiplier, no weight decay on norms and embeddings, and full-model gradient clipping."""

import itertools
from typing import Any, Dict, List

import torch
from detectron2.config import CfgNode
from detectron2.solver.build import (
    get_default_optimizer_params,
    maybe_add_gradient_clipping,
    reduce_param_groups,
)
from torch import nn

__all__ = ["OPTIMIZERS", "build_optimizer", "full_model_gradient_clipping"]

OPTIMIZERS = {"ADAMW": torch.optim.AdamW, "SGD": torch.optim.SGD}

# Parameters that are embeddings without being an nn.Embedding (the learned background embedding
# and temperature of the embedding classifier): no weight decay either.
EMBEDDING_PARAMETER_NAMES = ("bg_embed", "logit_scale")


def full_model_gradient_clipping(optim_cls: type, max_norm: float) -> type:
    """``optim_cls`` whose ``step`` first clips the norm of ALL gradients together to ``max_norm``
    (the reference; Detectron2's "value" and "norm" clip each parameter on its own)."""

    class FullModelGradientClipping(optim_cls):
        def step(self, closure=None):
            params = itertools.chain(*[group["params"] for group in self.param_groups])
            torch.nn.utils.clip_grad_norm_(params, max_norm)
            return super().step(closure=closure)

    FullModelGradientClipping.__name__ = f"FullModelGradientClipping{optim_cls.__name__}"
    return FullModelGradientClipping


def build_optimizer(cfg: CfgNode, model: nn.Module) -> torch.optim.Optimizer:
    """``SOLVER.OPTIMIZER`` over the trainable parameters of ``model``.

    Learning rate ``BASE_LR`` (x ``BACKBONE_MULTIPLIER`` for parameters under ``backbone.``), weight
    decay ``WEIGHT_DECAY`` except ``WEIGHT_DECAY_NORM`` on normalisation layers and
    ``WEIGHT_DECAY_EMBED`` on embeddings; gradient clipping per ``SOLVER.CLIP_GRADIENTS``, whose
    ``CLIP_TYPE`` may also be "full_model".
    """
    solver = cfg.SOLVER
    if solver.OPTIMIZER not in OPTIMIZERS:
        raise ValueError(
            f"SOLVER.OPTIMIZER must be one of {sorted(OPTIMIZERS)}, got {solver.OPTIMIZER}"
        )
    no_decay = {"weight_decay": solver.WEIGHT_DECAY_EMBED}
    grouped = get_default_optimizer_params(
        model,
        base_lr=solver.BASE_LR,
        weight_decay=solver.WEIGHT_DECAY,
        weight_decay_norm=solver.WEIGHT_DECAY_NORM,
        overrides={name: no_decay for name in EMBEDDING_PARAMETER_NAMES},
    )
    names = {id(p): n for n, p in model.named_parameters()}
    embeddings = {
        id(p) for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters()
    }
    params: List[Dict[str, Any]] = []
    for group in grouped:  # one group per parameter, adjusted, then merged again
        for param in group["params"]:
            single = {**group, "params": [param]}
            if names[id(param)].startswith("backbone."):
                single["lr"] = single["lr"] * solver.BACKBONE_MULTIPLIER
            if id(param) in embeddings:
                single["weight_decay"] = solver.WEIGHT_DECAY_EMBED
            params.append(single)
    params = reduce_param_groups(params)
    optim_cls = OPTIMIZERS[solver.OPTIMIZER]
    kwargs = {"momentum": solver.MOMENTUM} if solver.OPTIMIZER == "SGD" else {}
    clip = solver.CLIP_GRADIENTS
    if clip.ENABLED and clip.CLIP_TYPE == "full_model":
        optim_cls = full_model_gradient_clipping(optim_cls, clip.CLIP_VALUE)
    else:
        optim_cls = maybe_add_gradient_clipping(cfg, optim_cls)
    return optim_cls(params, solver.BASE_LR, **kwargs)
