"""train_net.py end to end, in-process: a few training iterations on a tiny generated dataset (CPU),
then --eval-only from the saved weights, and the optimizer it builds."""

import importlib.util
import itertools
import json
import sys
from pathlib import Path

import pytest
import torch
from detectron2.engine import default_argument_parser

from ovavss_d2.data.datasets import register_avsbench_semantic
from ovavss_d2.utils.testing import make_fake_avsbench

ROOT = Path(__file__).resolve().parents[1]
INSTANT_TEST = ROOT / "configs/avss_synth/ovavss_effnet_yamnet_minilm_instant_test.yaml"
_counter = itertools.count()


def _load_train_net():
    spec = importlib.util.spec_from_file_location("train_net", ROOT / "train_net.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_net"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def train_net():
    return _load_train_net()


@pytest.fixture(scope="module")
def fake_names(tmp_path_factory):
    root = tmp_path_factory.mktemp("fake") / "AVSBench-semantic"
    make_fake_avsbench(root, clips_per_split=2, size=(48, 64), subsets=("v1s", "v2"))
    prefix = f"tn{next(_counter)}_"
    register_avsbench_semantic(root, name_prefix=prefix)
    return prefix + "avsbench_ov_train_base", prefix + "avsbench_ov_test"


def _args(output_dir, train, test, *extra, eval_only=False, resume=False):
    argv = ["--config-file", str(INSTANT_TEST)]
    if eval_only:
        argv.append("--eval-only")
    if resume:
        argv.append("--resume")
    argv += [
        "MODEL.DEVICE",
        "cpu",
        "MODEL.EFFICIENTNET.WEIGHTS",
        "none",
        "MODEL.TEXT_ENCODER.TEMPLATES",
        "single",
        "DATASETS.TRAIN",
        f"('{train}',)",
        "DATASETS.TEST",
        f"('{test}',)",
        "SOLVER.IMS_PER_BATCH",
        "2",
        "SOLVER.MAX_ITER",
        "3",
        "SOLVER.STEPS",
        "(2,)",
        "OUTPUT_DIR",
        str(output_dir),
        *extra,
    ]
    return default_argument_parser().parse_args(argv)


def test_train_then_eval_only(train_net, fake_names, tmp_path):
    train, test = fake_names
    train_net.main(_args(tmp_path, train, test))
    for name in ("model_final.pth", "model_weights.pth", "metrics.json", "last_checkpoint"):
        assert (tmp_path / name).is_file(), name
    records = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    losses = [r for r in records if "total_loss" in r]
    assert losses and losses[-1]["iteration"] == 2  # writers run every 20 iterations and at the end
    assert all(r["total_loss"] == r["total_loss"] for r in losses)  # not NaN
    assert {"loss_objectness", "loss_class", "loss_mask", "loss_dice", "lr"} <= set(losses[-1])
    weights = torch.load(tmp_path / "model_weights.pth", map_location="cpu", weights_only=False)
    assert set(weights) >= {"model"} and "optimizer" not in weights
    assert not any(k.startswith("audio_encoder.") for k in weights["model"])  # frozen YAMNet

    final = torch.load(tmp_path / "model_final.pth", map_location="cpu", weights_only=False)
    assert final["trainer"]["_trainer"]["optimizer"]["state"]  # AdamW moments are checkpointed

    # --resume continues from model_final.pth (iteration 3) up to the new MAX_ITER.
    train_net.main(_args(tmp_path, train, test, "SOLVER.MAX_ITER", "4", resume=True))
    records = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    assert [r["iteration"] for r in records if "total_loss" in r][-1] == 3

    eval_dir = tmp_path / "eval"
    results = train_net.main(
        _args(
            eval_dir,
            train,
            test,
            "MODEL.WEIGHTS",
            str(tmp_path / "model_weights.pth"),
            eval_only=True,
        )
    )
    flat = {k: v for task in results.values() for k, v in task.items()}
    assert any("mIoU" in k for k in flat), results


def test_optimizer_groups(train_net, fake_names, tmp_path):
    from detectron2.modeling import build_model

    train, test = fake_names
    cfg = train_net.setup(_args(tmp_path, train, test, "SOLVER.WEIGHT_DECAY", "0.05"))
    model = build_model(cfg)
    optimizer = train_net.Trainer.build_optimizer(cfg, model)
    assert isinstance(optimizer, torch.optim.AdamW)
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    by_name = {n: group_of[id(p)] for n, p in model.named_parameters() if id(p) in group_of}
    assert not any(n.startswith("audio_encoder.") for n in by_name)  # frozen: not optimised
    backbone = [g for n, g in by_name.items() if n.startswith("backbone.")]
    assert backbone and all(g["lr"] == pytest.approx(cfg.SOLVER.BASE_LR * 0.1) for g in backbone)
    assert by_name["embedding_classifier.bg_embed"]["weight_decay"] == 0.0
    assert by_name["embedding_classifier.logit_scale"]["weight_decay"] == 0.0
    norms = [g for n, g in by_name.items() if ".norm" in n and n.endswith(".weight")]
    assert norms and all(g["weight_decay"] == 0.0 for g in norms)
    embeddings = [
        n
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Embedding)
        for _ in m.parameters()
    ]
    assert all(by_name[f"{n}.weight"]["weight_decay"] == 0.0 for n in embeddings)
    linear = by_name["embedding_classifier.proj.weight"]
    assert linear["weight_decay"] == 0.05 and linear["lr"] == cfg.SOLVER.BASE_LR


def test_full_model_gradient_clipping(train_net):
    params = [torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(3))]
    from ovavss_d2.solver import full_model_gradient_clipping

    opt = full_model_gradient_clipping(torch.optim.SGD, 1.0)(params, lr=1.0)
    params[0].grad = torch.full((2,), 3.0)
    params[1].grad = torch.full((3,), 4.0)
    opt.step()
    grad = torch.cat([p.grad for p in params])
    assert grad.norm().item() == pytest.approx(1.0, rel=1e-5)
    # The direction is kept: all gradients scaled by one factor.
    assert (params[1].grad[0] / params[0].grad[0]).item() == pytest.approx(4 / 3, rel=1e-5)
