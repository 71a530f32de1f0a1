"""The AMP runner (ovavss_d2/engine/amp.py): bfloat16 and float16 training steps of the tiny
OV-AVSS model against float32 on one fixed batch, gradient unscaling before the optimizer's
clipping, the scaler's state in the trainer state, SOLVER.AMP.DTYPE, and train_net.py with AMP."""

import itertools
import json
import logging
import warnings

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.engine import SimpleTrainer, default_argument_parser
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage
from torch import nn

from ovavss_d2 import add_ovavss_config
from ovavss_d2.data.datasets import register_avsbench_semantic
from ovavss_d2.engine.amp import AMPRunner, amp_settings, build_runner, resolve_amp_dtype
from ovavss_d2.solver import full_model_gradient_clipping
from ovavss_d2.utils.preflight import InputError
from ovavss_d2.utils.testing import make_fake_avsbench

HELPERS = "tests/modeling/meta_arch/ovavss_model_helpers.py"
INSTANT_TEST = "configs/avss_synth/ovavss_effnet_yamnet_minilm_instant_test.yaml"
# |total loss under bfloat16 autocast - float32| / float32 on the fixed batch below; measured
# 0.3 % on the CPU (one forward, same weights, same point samples).
BF16_LOSS_RTOL = 0.02
_counter = itertools.count()


def _fp16_autocast_works(device: str) -> bool:
    """Whether this torch autocasts matmuls to float16 on ``device`` (CPU: torch >= 2.4 or so)."""
    a = torch.ones(2, 2, device=device)
    with torch.autocast(device_type=torch.device(device).type, dtype=torch.float16):
        return (a @ a).dtype == torch.float16


@pytest.fixture(scope="module")
def helpers(load_script):
    return load_script(HELPERS)


@pytest.fixture
def tiny(helpers, repo_root, device):
    """(model, batch): the tiny OV-AVSS model (2 decoder layers) on ``device`` and 2 clips."""
    torch.manual_seed(0)
    model = build_model(helpers.tiny_cfg(repo_root, **{"MODEL.DEVICE": device}))
    clips = [
        helpers.make_clip(2, classes=(0, 1), seed=1),
        helpers.make_clip(2, classes=(1,), seed=2),
    ]
    return model.train(), clips


def _total_loss(model, clips, dtype=None) -> float:
    """Total loss of one forward (point sampling seeded), in autocast to ``dtype`` if given."""
    torch.manual_seed(5)
    with torch.no_grad(), torch.autocast(
        model.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None
    ):
        return float(sum(model(clips).values()))


def _runner(model: nn.Module, batch, optimizer, dtype: torch.dtype, **kwargs) -> AMPRunner:
    """An AMPRunner that trains ``model`` on ``batch`` again and again."""
    device_type = next(model.parameters()).device.type
    return AMPRunner(
        model, itertools.repeat(batch), optimizer, device_type=device_type, dtype=dtype, **kwargs
    )


def _run_steps(runner: SimpleTrainer, steps: int) -> list:
    """``steps`` iterations of ``runner``; the total loss of each (from the event storage)."""
    totals = []
    with EventStorage(0) as storage:
        for i in range(steps):
            storage.iter = runner.iter = i
            runner.run_step()
            totals.append(storage.latest()["total_loss"][0])
    return totals


def _output_dtypes(module: nn.Module) -> list:
    """Hook ``module`` to record the dtype of its outputs; the list fills during forwards."""
    seen = []
    module.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    return seen


def _first_linear(model: nn.Module) -> nn.Module:
    return next(m for m in model.transformer_decoder.modules() if isinstance(m, nn.Linear))


def _check_gradients(model: nn.Module) -> None:
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert len(grads) > 20
    assert all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_bfloat16_trains_close_to_float32(tiny):
    model, clips = tiny
    reference = _total_loss(model, clips)
    mixed = _total_loss(model, clips, torch.bfloat16)
    assert mixed != reference  # autocast did change the arithmetic
    assert abs(mixed - reference) <= BF16_LOSS_RTOL * abs(reference), (mixed, reference)

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    runner = _runner(model, clips, optimizer, torch.bfloat16)
    assert runner.grad_scaler is None and "grad_scaler" not in runner.state_dict()
    dtypes = _output_dtypes(_first_linear(model))
    logits = _output_dtypes(model.embedding_classifier)  # computed with the losses
    totals = _run_steps(runner, 3)
    assert dtypes and set(dtypes) == {torch.bfloat16}  # the forward ran in autocast
    assert logits and set(logits) == {torch.float32}  # the losses did not (OVAVSS._losses)
    assert all(torch.isfinite(torch.tensor(totals)))
    assert totals[0] == pytest.approx(reference, rel=BF16_LOSS_RTOL)
    _check_gradients(model)


def test_float16_with_scaler_trains(tiny, device):
    if not _fp16_autocast_works(device):
        pytest.skip(f"this torch has no float16 autocast on {device}")
    model, clips = tiny
    reference = _total_loss(model, clips)
    params = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    optimizer = full_model_gradient_clipping(torch.optim.AdamW, 1.0)(params, lr=1e-4)
    # The random backbone's features are ~1e-7 (no pretrained weights), so on the CPU the scaled
    # gradients overflow float16 at scales >= 256: the scaler skips those steps and halves its
    # scale (from 65536 that takes 9 steps; 512 keeps the test short).
    scaler = torch.amp.GradScaler(model.device.type, init_scale=512.0)
    runner = _runner(model, clips, optimizer, torch.float16, grad_scaler=scaler)
    dtypes = _output_dtypes(_first_linear(model))
    totals = _run_steps(runner, 5)
    assert set(dtypes) == {torch.float16}
    assert all(torch.isfinite(torch.tensor(totals)))
    assert totals[0] == pytest.approx(reference, rel=BF16_LOSS_RTOL)
    assert all(torch.isfinite(p).all() for p in params)  # skipped steps left no inf / NaN
    assert any(not torch.equal(p, b) for p, b in zip(params, before))  # some steps were taken
    assert scaler.get_scale() >= 32.0
    _check_gradients(model)  # the last step's, unscaled: finite at the scale found


class _Quadratic(nn.Module):
    """``{"loss": sum((w * x)^2)}``: gradient 2 w x^2, known in float32."""

    def __init__(self, device):
        super().__init__()
        self.w = nn.Parameter(torch.linspace(0.5, 2.0, 8, device=device))

    def forward(self, x):
        return {"loss": ((self.w * x) ** 2).sum()}


class _RecordingClip:
    """Wraps full-model clipping: records the gradient norm the clipping sees."""

    def __init__(self, max_norm: float):
        self.seen = []
        parent = full_model_gradient_clipping(torch.optim.SGD, max_norm)
        outer = self

        class Recording(parent):
            def step(self, closure=None):
                grads = [p.grad for g in self.param_groups for p in g["params"]]
                outer.seen.append(float(torch.cat([g.flatten() for g in grads]).norm()))
                return super().step(closure)

        self.cls = Recording


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_clipping_sees_unscaled_gradients(device, dtype):
    if dtype == "float16" and not _fp16_autocast_works(device):
        pytest.skip(f"this torch has no float16 autocast on {device}")
    model = _Quadratic(device)
    x = torch.full((8,), 2.0, device=device)
    true_norm = float((2 * model.w.detach() * x**2).norm())
    recording = _RecordingClip(max_norm=1.0)
    optimizer = recording.cls(model.parameters(), lr=0.0)
    runner = _runner(model, x, optimizer, getattr(torch, dtype))
    _run_steps(runner, 1)
    assert recording.seen == [pytest.approx(true_norm, rel=1e-2)]  # not x 65536 (the scale)
    assert float(model.w.grad.norm()) == pytest.approx(1.0, rel=1e-3)  # then clipped


def _amp_cfg(**solver_amp):
    cfg = get_cfg()
    add_ovavss_config(cfg)
    cfg.MODEL.DEVICE = "cpu"
    for key, value in solver_amp.items():
        setattr(cfg.SOLVER.AMP, key, value)
    return cfg


@pytest.mark.parametrize("enabled", [True, False])
def test_unknown_dtype_is_one_clear_error(enabled):
    with pytest.raises(InputError, match=r"^SOLVER\.AMP\.DTYPE 'fp16': not one of auto, bfloat16"):
        amp_settings(_amp_cfg(ENABLED=enabled, DTYPE="fp16"))


def test_dtype_choice(monkeypatch):
    assert _amp_cfg().SOLVER.AMP.DTYPE == "auto" and not _amp_cfg().SOLVER.AMP.ENABLED
    assert not amp_settings(_amp_cfg()).enabled
    auto = amp_settings(_amp_cfg(ENABLED=True))
    assert (auto.dtype, auto.device_type, auto.uses_scaler) == (torch.bfloat16, "cpu", False)
    half = amp_settings(_amp_cfg(ENABLED=True, DTYPE="float16"))
    assert half.dtype == torch.float16 and half.uses_scaler
    # A CUDA GPU without native bfloat16 (before Ampere): auto is float16, with the scaler.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    assert resolve_amp_dtype("auto", "cuda") == torch.float16
    assert resolve_amp_dtype("bfloat16", "cuda") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert resolve_amp_dtype("auto", "cuda") == torch.bfloat16


class _Lines(logging.Handler):
    """Collects the messages of a logger (caplog misses loggers that setup_logger cut off)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_build_runner_logs_and_keeps_plain_trainer():
    model = _Quadratic("cpu")
    plain = SimpleTrainer(model, [torch.ones(8)], torch.optim.SGD(model.parameters(), lr=0.1))
    logger, handler = logging.getLogger("ovavss_d2"), _Lines()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        assert build_runner(plain, amp_settings(_amp_cfg())) is plain
        runner = build_runner(plain, amp_settings(_amp_cfg(ENABLED=True)))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert isinstance(runner, AMPRunner) and runner.optimizer is plain.optimizer
    assert runner.model is model and runner.dtype == torch.bfloat16
    assert handler.lines == [
        "AMP off (SOLVER.AMP.ENABLED False): float32 training",
        "AMP on: bfloat16 autocast on cpu (SOLVER.AMP.DTYPE auto), no gradient scaler",
    ]


def test_scaler_state_roundtrip(tmp_path):
    def runner():
        model = _Quadratic("cpu")
        scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        return _runner(model, torch.ones(8), optimizer, torch.float16, grad_scaler=scaler)

    trained = runner()
    _run_steps(trained, 2)
    assert trained.grad_scaler.get_scale() == 4096.0  # grew once per finite step
    torch.save(trained.state_dict(), tmp_path / "state.pth")
    state = torch.load(tmp_path / "state.pth", weights_only=True)  # as --resume reads it
    resumed = runner()
    resumed.load_state_dict(state)
    assert resumed.grad_scaler.state_dict() == trained.grad_scaler.state_dict()
    assert resumed.grad_scaler.get_scale() == 4096.0

    fresh = runner()
    fresh.load_state_dict({k: v for k, v in state.items() if k != "grad_scaler"})
    assert fresh.grad_scaler.get_scale() == 1024.0  # a checkpoint without a scaler


@pytest.fixture(scope="module")
def fake_names(tmp_path_factory):
    root = tmp_path_factory.mktemp("amp_fake") / "AVSBench-semantic"
    make_fake_avsbench(root, clips_per_split=1, size=(48, 64), subsets=("v1s",))
    prefix = f"amp{next(_counter)}_"
    register_avsbench_semantic(root, name_prefix=prefix)
    return prefix + "avsbench_ov_train_base", prefix + "avsbench_ov_test"


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_train_net_with_amp(load_script, repo_root, fake_names, tmp_path, dtype):
    """Two iterations of train_net.py with AMP on the CPU, then one more with --resume (the
    float16 scaler's state goes through the checkpoint)."""
    if dtype == "float16" and not _fp16_autocast_works("cpu"):
        pytest.skip("this torch has no float16 autocast on the CPU")
    train_net = load_script("train_net.py", name="train_net_amp")
    train, _ = fake_names

    def args(max_iter, resume=False):
        argv = ["--config-file", str(repo_root / INSTANT_TEST)] + (["--resume"] if resume else [])
        argv += (
            "MODEL.DEVICE cpu MODEL.EFFICIENTNET.WEIGHTS none MODEL.TEXT_ENCODER.TEMPLATES single "
            "MODEL.TRANSFORMER_DECODER.DEC_LAYERS 2 DATASETS.TEST () SOLVER.IMS_PER_BATCH 1 "
            "SOLVER.STEPS () SOLVER.AMP.ENABLED True SOLVER.CLIP_GRADIENTS.ENABLED True "
            "SOLVER.CLIP_GRADIENTS.CLIP_TYPE full_model"
        ).split()
        argv += ["SOLVER.AMP.DTYPE", dtype, "DATASETS.TRAIN", f"('{train}',)"]
        argv += ["SOLVER.MAX_ITER", str(max_iter), "OUTPUT_DIR", str(tmp_path)]
        return default_argument_parser().parse_args(argv)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_net.main(args(2))
    # Detectron2's own AMPTrainer (replaced) warned of the deprecated / CUDA-only GradScaler.
    assert not [w for w in caught if "torch.cuda.amp" in str(w.message)]
    scaler = "with a GradScaler" if dtype == "float16" else "no gradient scaler"
    line = f"AMP on: {dtype} autocast on cpu (SOLVER.AMP.DTYPE {dtype}), {scaler}"
    assert line in (tmp_path / "log.txt").read_text()
    records = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    losses = [r["total_loss"] for r in records if "total_loss" in r]
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    state = _trainer_state(tmp_path)
    if dtype == "bfloat16":
        assert "grad_scaler" not in state and state["optimizer"]["state"]  # steps were taken
    else:  # the steps overflow at these scales (random backbone, see above) and are skipped
        assert 0 < state["grad_scaler"]["scale"] < 65536.0

    train_net.main(args(3, resume=True))
    records = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    assert [r["iteration"] for r in records if "total_loss" in r][-1] == 2
    if dtype == "float16":  # continued from the saved scale (a fresh scaler starts at 65536)
        assert _trainer_state(tmp_path)["grad_scaler"]["scale"] <= state["grad_scaler"]["scale"]


def _trainer_state(output_dir) -> dict:
    """The runner's state in ``model_final.pth`` (optimizer, scaler)."""
    final = torch.load(output_dir / "model_final.pth", map_location="cpu", weights_only=True)
    return final["trainer"]["_trainer"]
