"""The DDP plan of a config (ovavss_d2/engine/ddp.py): which heads no loss trains (frozen), when DDP
must find unused parameters; and, in one process, that after freezing every trainable parameter
gets a gradient (what DDP checks in every iteration; tests/test_train_net_ddp.py runs DDP)."""

import sys
from pathlib import Path

import pytest
import torch
from detectron2.engine import defaults as d2_defaults
from detectron2.modeling import build_model
from detectron2.utils import comm

from ovavss_d2 import get_cfg
from ovavss_d2.engine.ddp import DDPPlan, ddp_options, ddp_plan, freeze_modules

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "modeling" / "meta_arch"))
from ovavss_model_helpers import make_clip, tiny_cfg  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
EMBED = "transformer_decoder.embed_head"
OBJECTNESS = "transformer_decoder.objectness_head"
FRAME = "transformer_decoder.frame_objectness_head"


def _cfg(config: str = "", **weights):
    cfg = get_cfg()
    cfg.MODEL.META_ARCHITECTURE = "OVAVSS"  # Detectron2's default is GeneralizedRCNN
    if config:
        cfg.merge_from_file(str(REPO / config))
    for key, value in weights.items():
        cfg.MODEL.OVAVSS[key] = value
    return cfg


def test_default_config_needs_nothing():
    plan = ddp_plan(_cfg())
    assert plan == DDPPlan(frozen=(), find_unused_parameters=False, reason="")
    assert plan.describe() == (
        "DDP plan: frozen heads (no loss trains them): none; find_unused_parameters False"
    )


def test_reference_config_freezes_the_embedding_head():
    plan = ddp_plan(_cfg("configs/avsbench_ov/ovavss_R50_reference.yaml"))
    assert plan.frozen == (EMBED,) and not plan.find_unused_parameters
    assert plan.describe().endswith(
        f"frozen heads (no loss trains them): {EMBED}; find_unused_parameters False "
        "(MODEL.OVAVSS.CLASS_WEIGHT 0.0)"
    )


@pytest.mark.parametrize(
    "weights, frozen, find_unused",
    [
        ({"OBJECTNESS_WEIGHT": 0.0}, (OBJECTNESS,), False),
        ({"OBJECTNESS_WEIGHT": 0.0, "CLASS_WEIGHT": 0.0}, (OBJECTNESS, EMBED), False),
        ({"MASK_WEIGHT": 0.0}, (), False),  # dice still trains the masks
        ({"DICE_WEIGHT": 0.0}, (), False),
        ({"MASK_WEIGHT": 0.0, "DICE_WEIGHT": 0.0}, (), True),  # the mask branch goes untrained
        ({"CLASS_WEIGHT": -1.0}, (EMBED,), False),  # as build_criterion: no loss unless > 0
    ],
)
def test_zeroed_loss_weights(weights, frozen, find_unused):
    plan = ddp_plan(_cfg(**weights))
    assert (plan.frozen, plan.find_unused_parameters) == (frozen, find_unused)
    for key, value in weights.items():
        assert f"MODEL.OVAVSS.{key} {value}" in plan.reason


def test_per_frame_head_frozen_only_when_built_without_its_loss():
    assert ddp_plan(_cfg(FRAME_OBJECTNESS_WEIGHT=0.0)).frozen == ()  # no head: nothing to freeze
    assert ddp_plan(_cfg(PER_FRAME_OBJECTNESS=True)).frozen == ()
    plan = ddp_plan(_cfg(PER_FRAME_OBJECTNESS=True, FRAME_OBJECTNESS_WEIGHT=0.0))
    assert plan.frozen == (FRAME,) and not plan.find_unused_parameters
    assert "MODEL.OVAVSS.FRAME_OBJECTNESS_WEIGHT 0.0" in plan.reason


def test_other_meta_architectures_are_left_alone():
    cfg = _cfg("configs/avsbench_object/tpavi_R50_s4.yaml")
    assert ddp_plan(cfg) == DDPPlan()


def _untrained(model) -> list:
    """Trainable parameters left without a gradient by one training step on two clips."""
    model.train()
    model.zero_grad()
    clips = [make_clip(2, classes=(0, 1), seed=1), make_clip(2, classes=(), seed=2)]
    sum(model(clips).values()).backward()
    return [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]


# CLASS_WEIGHT 0 leaves no learned classifier: CLIP-free class sources name the queries.
NO_CLASS_LOSS = {
    "MODEL.OVAVSS.CLASS_WEIGHT": 0.0,
    "MODEL.CLASS_SOURCES.NAMES": ["audio_tags"],
    "MODEL.CLASS_SOURCES.BASE_WEIGHTS": [1.0],
    "MODEL.CLASS_SOURCES.NOVEL_WEIGHTS": [1.0],
}


@pytest.mark.parametrize(
    "overrides, frozen",
    [
        ({}, ()),
        (NO_CLASS_LOSS, (EMBED,)),
        ({"MODEL.OVAVSS.OBJECTNESS_WEIGHT": 0.0}, (OBJECTNESS,)),
        ({"MODEL.OVAVSS.PER_FRAME_OBJECTNESS": True}, ()),
        (
            {
                "MODEL.OVAVSS.PER_FRAME_OBJECTNESS": True,
                "MODEL.OVAVSS.FRAME_OBJECTNESS_WEIGHT": 0.0,
            },
            (FRAME,),
        ),
    ],
)
def test_after_freezing_every_trainable_parameter_gets_a_gradient(repo_root, overrides, frozen):
    cfg = tiny_cfg(repo_root, **overrides)
    torch.manual_seed(0)
    model = build_model(cfg)
    plan = ddp_plan(cfg)
    assert plan.frozen == frozen and not plan.find_unused_parameters
    untrained = _untrained(model)
    frozen_names = [n for n in untrained if n.startswith(frozen)] if frozen else []
    assert untrained == frozen_names and bool(untrained) == bool(frozen)  # the bug, unfrozen
    freeze_modules(model, plan.frozen)
    assert _untrained(model) == []
    assert not any(
        p.requires_grad for name in frozen for p in model.get_submodule(name).parameters()
    )


def test_freeze_modules_names_a_missing_module():
    with pytest.raises(KeyError, match="transformer_decoder.embed_head: no such module in Linear"):
        freeze_modules(torch.nn.Linear(2, 2), (EMBED,))


def test_ddp_options_reach_detectron2s_ddp(monkeypatch):
    built = []
    monkeypatch.setattr(comm, "get_world_size", lambda: 2)
    monkeypatch.setattr(
        d2_defaults, "DistributedDataParallel", lambda model, **kw: built.append(kw) or model
    )
    original = d2_defaults.create_ddp_model
    with ddp_options(find_unused_parameters=True):
        d2_defaults.create_ddp_model(torch.nn.Linear(2, 2), broadcast_buffers=False)
    assert d2_defaults.create_ddp_model is original  # restored
    d2_defaults.create_ddp_model(torch.nn.Linear(2, 2), broadcast_buffers=False)
    assert built[0]["find_unused_parameters"] is True and built[0]["broadcast_buffers"] is False
    assert "find_unused_parameters" not in built[1]
