"""train_net.py on several processes (issue 19, parts 1 and 2).

- Every config of ``configs/avsbench_ov`` and ``configs/avss_synth`` (and two with a zeroed loss
  weight) trains 3 iterations with DistributedDataParallel on 2 CPU processes (gloo), through
  ``train_net.main`` as ``--num-gpus 2`` runs it: heads that no loss trains are frozen, or DDP finds
  the unused parameters, and the run says which on one line. The architecture is made tiny
  (EfficientNet-Lite0 and YAMNet with random weights, small decoders, a tiny random CLIP); the
  keys that decide which heads get a loss (loss weights, class sources) are the config's own.
- ``--num-gpus N`` rescales each config's schedule through Detectron2's
  ``DefaultTrainer.auto_scale_workers`` (``SOLVER.REFERENCE_WORLD_SIZE``), no processes needed.
"""

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from detectron2.engine import DefaultTrainer

from ovavss_d2.utils.testing import make_fake_avsbench

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(
    str(p.relative_to(ROOT))
    for folder in ("configs/avsbench_ov", "configs/avss_synth")
    for p in (ROOT / folder).glob("*.yaml")
)
# Configs that zero another loss weight: the objectness head frozen; no mask loss at all, so DDP
# must find the pixel decoder's unused mask branch.
VARIANTS = {
    "no_objectness_loss": (
        "configs/avsbench_ov/ovavss_R50.yaml",
        ["MODEL.OVAVSS.OBJECTNESS_WEIGHT", "0"],
    ),
    "no_mask_losses": (
        "configs/avsbench_ov/ovavss_R50.yaml",
        ["MODEL.OVAVSS.MASK_WEIGHT", "0", "MODEL.OVAVSS.DICE_WEIGHT", "0"],
    ),
}
# What each run must log (the DDP plan) beyond the default "frozen heads ...: none; ... False".
EXPECTED_PLAN = {
    "configs/avsbench_ov/ovavss_R50_reference.yaml": (
        "frozen heads (no loss trains them): transformer_decoder.embed_head; "
        "find_unused_parameters False"
    ),
    "no_objectness_loss": (
        "frozen heads (no loss trains them): transformer_decoder.objectness_head; "
        "find_unused_parameters False"
    ),
    "no_mask_losses": "frozen heads (no loss trains them): none; find_unused_parameters True",
}
DEFAULT_PLAN = "frozen heads (no loss trains them): none; find_unused_parameters False"
# Architecture only (as in tests/modeling/meta_arch/test_class_evidence_golden.py).
TINY = {
    "MODEL.BACKBONE.NAME": "D2EfficientNetLite",
    "MODEL.EFFICIENTNET.WEIGHTS": "none",
    "MODEL.EFFICIENTNET.FREEZE_AT": "0",
    "MODEL.AUDIO_ENCODER.NAME": "YAMNet",
    "MODEL.AUDIO_ENCODER.WEIGHTS": "none",
    "MODEL.PIXEL_DECODER.CONV_DIM": "32",
    "MODEL.PIXEL_DECODER.MASK_DIM": "32",
    "MODEL.PIXEL_DECODER.NUM_ENCODER_LAYERS": "1",
    "MODEL.PIXEL_DECODER.NUM_HEADS": "4",
    "MODEL.PIXEL_DECODER.DIM_FEEDFORWARD": "64",
    "MODEL.PIXEL_DECODER.AV_FUSION.NUM_HEADS": "4",
    "MODEL.TRANSFORMER_DECODER.HIDDEN_DIM": "32",
    "MODEL.TRANSFORMER_DECODER.NUM_QUERIES": "8",
    "MODEL.TRANSFORMER_DECODER.NHEADS": "4",
    "MODEL.TRANSFORMER_DECODER.DIM_FEEDFORWARD": "64",
    "MODEL.TRANSFORMER_DECODER.DEC_LAYERS": "2",
    "MODEL.TRANSFORMER_DECODER.EMBED_DIM": "32",
}
# Tiny inputs and a schedule of 6 iterations for 1 process: 3 on 2 (auto_scale_workers).
RUN = {
    "MODEL.DEVICE": "cpu",
    "MODEL.WEIGHTS": "",
    "MODEL.BACKBONE.WEIGHTS": "",  # the paper configs name the ImageNet R-50.pkl (a download)
    "MODEL.TEXT_ENCODER.TEMPLATES": "single",
    "MODEL.OVAVSS.TRAIN_NUM_POINTS": "64",
    "DATASETS.TRAIN": "('avsbench_ov_train_base',)",
    "DATASETS.TEST": "()",
    "INPUT.MIN_SIZE_TRAIN": "(64,)",
    "INPUT.MAX_SIZE_TRAIN": "96",
    "INPUT.SAMPLING_FRAME_NUM": "2",
    "INPUT.AUDIO.AUGMENT.NOISE_PATH": "",
    "SOLVER.IMS_PER_BATCH": "1",
    "SOLVER.REFERENCE_WORLD_SIZE": "1",
    "SOLVER.MAX_ITER": "6",
    "SOLVER.STEPS": "(4,)",
    "SOLVER.CHECKPOINT_PERIOD": "1000",
    "TEST.EVAL_PERIOD": "0",
    "DATALOADER.NUM_WORKERS": "0",
}

WORKER = textwrap.dedent("""
    import importlib.util, json, shutil, sys, traceback
    from detectron2.engine import launch
    from detectron2.utils import comm

    spec = importlib.util.spec_from_file_location("train_net", sys.argv[1])
    train_net = importlib.util.module_from_spec(spec)
    sys.modules["train_net"] = train_net
    spec.loader.exec_module(train_net)

    def worker(jobs_file):
        results = {}
        for name, job in json.load(open(jobs_file)).items():
            try:
                train_net.main(train_net.parse_and_check(job["argv"]))
                results[name] = "ok"
            except BaseException:  # SystemExit of a bad input too; the next config still runs
                results[name] = traceback.format_exc()
            if comm.is_main_process():  # later runs log into this file too (one logger)
                shutil.copy(f"{job['output_dir']}/log.txt", f"{job['output_dir']}/own_log.txt")
            comm.synchronize()
        with open(f"{jobs_file}.rank{comm.get_rank()}", "w") as f:
            json.dump(results, f)

    if __name__ == "__main__":
        launch(worker, 2, dist_url="auto", args=(sys.argv[2],))
    """)


def _argv(config: str, output_dir: Path, clip: str, extra=()) -> list:
    overrides = {**TINY, **RUN, "OUTPUT_DIR": str(output_dir)}
    if "avsbench_ov/" in config:  # the R50 configs name CLIP ViT-B/16 (a download)
        overrides["MODEL.TEXT_ENCODER.CLIP_MODEL"] = clip
    pairs = [item for pair in overrides.items() for item in pair]
    return ["--config-file", str(ROOT / config), "--num-gpus", "2", *pairs, *extra]


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory):
    """One 2-process launch training every config in turn: name -> (output dir, per-rank status)."""
    from clip.model import CLIP

    installed = importlib.import_module("detectron2.engine.launch")  # the module, not launch()
    if "GLOO" not in Path(installed.__file__).read_text().upper():
        pytest.skip("this detectron2 build starts processes with NCCL only (scripts/setup.sh)")
    d = tmp_path_factory.mktemp("ddp")
    make_fake_avsbench(d / "data" / "AVSBench-semantic", clips_per_split=4, subsets=("v1s",))
    torch.manual_seed(0)
    clip = d / "tiny_clip.pt"
    torch.save(CLIP(32, 32, 2, 64, 16, 77, 49408, 64, 1, 1).state_dict(), clip)
    jobs = {config: (config, []) for config in CONFIGS}
    jobs.update(VARIANTS)
    out = {name: d / "out" / name.replace("/", "_") for name in jobs}
    (d / "jobs.json").write_text(
        json.dumps(
            {
                name: {
                    "argv": _argv(config, out[name], str(clip), extra),
                    "output_dir": str(out[name]),
                }
                for name, (config, extra) in jobs.items()
            }
        )
    )
    (d / "worker.py").write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env["DETECTRON2_DATASETS"] = str(d / "data")
    proc = subprocess.run(
        [sys.executable, str(d / "worker.py"), str(ROOT / "train_net.py"), str(d / "jobs.json")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((d / f"jobs.json.rank{r}").read_text()) for r in range(2)]
    return {name: (out[name], [rank[name] for rank in ranks]) for name in jobs}


@pytest.mark.parametrize("name", CONFIGS + list(VARIANTS))
def test_config_trains_on_two_processes(ddp_runs, name):
    output_dir, statuses = ddp_runs[name]
    assert statuses == ["ok", "ok"], "\n".join(statuses)
    records = [json.loads(line) for line in (output_dir / "metrics.json").read_text().splitlines()]
    iterations = [r["iteration"] for r in records if "total_loss" in r]
    assert iterations[-1] == 2  # MAX_ITER 6 for 1 process: 3 iterations on 2
    assert all(r["total_loss"] == r["total_loss"] for r in records if "total_loss" in r)
    log = (output_dir / "own_log.txt").read_text()
    plans = [line.split("DDP plan: ", 1)[1] for line in log.splitlines() if "DDP plan: " in line]
    assert len(plans) == 1 and plans[0].startswith(EXPECTED_PLAN.get(name, DEFAULT_PLAN)), plans
    assert "Auto-scaling the config to batch_size=2" in log


# -- schedules that scale (no processes) ----------------------------------------------------------


def _config(train_net, config: str, *overrides: str, num_gpus: int = 1):
    args = train_net.get_parser().parse_args(
        ["--config-file", str(ROOT / config), "--num-gpus", str(num_gpus), *overrides]
    )
    return train_net.load_config(args)


@pytest.fixture(scope="module")
def train_net(load_script):
    return load_script("train_net.py")


@pytest.mark.parametrize("config", CONFIGS)
def test_every_config_states_its_reference_world_size(train_net, config):
    cfg = _config(train_net, config)
    assert cfg.SOLVER.REFERENCE_WORLD_SIZE == 1
    assert cfg.SOLVER.IMS_PER_BATCH % cfg.SOLVER.REFERENCE_WORLD_SIZE == 0


def test_paper_schedule_on_8_gpus(train_net):
    cfg = _config(train_net, "configs/avsbench_ov/ovavss_R50.yaml", "TEST.EVAL_PERIOD", "8019")
    scaled = DefaultTrainer.auto_scale_workers(cfg, 8)
    s = scaled.SOLVER
    assert (s.IMS_PER_BATCH, s.REFERENCE_WORLD_SIZE) == (8, 8)  # 1 clip per GPU
    assert s.BASE_LR == pytest.approx(8e-4)
    # 96228 / 8 = 12028.5 and 72171 / 8 = 9021.375: Python's round() (half to even).
    assert (s.MAX_ITER, s.STEPS, s.WARMUP_ITERS) == (12028, (9021, 11026), 1)
    assert (s.CHECKPOINT_PERIOD, scaled.TEST.EVAL_PERIOD) == (1002, 1002)
    # 12 epochs of 8019 clips either way; the written config is unchanged.
    assert s.MAX_ITER * s.IMS_PER_BATCH == pytest.approx(12 * 8019, abs=8)
    assert (cfg.SOLVER.MAX_ITER, cfg.SOLVER.IMS_PER_BATCH) == (96228, 1)
    assert DefaultTrainer.auto_scale_workers(cfg, 1) is cfg  # the reference world size


def test_offline_schedule_on_2_gpus(train_net):
    cfg = _config(train_net, "configs/avss_synth/ovavss_effnet_yamnet_minilm.yaml")
    s = DefaultTrainer.auto_scale_workers(cfg, 2).SOLVER
    assert (s.IMS_PER_BATCH, s.MAX_ITER, s.STEPS, s.CHECKPOINT_PERIOD) == (
        4,
        1200,
        (950, 1125),
        250,
    )
    assert (s.BASE_LR, s.WARMUP_ITERS) == (pytest.approx(1e-3), 10)


def test_finished_run_counts_scaled_iterations(train_net, tmp_path, monkeypatch):
    """A run trained on 2 processes (MAX_ITER 6 -> 3) is finished after 3 iterations."""
    from detectron2.utils import comm

    state = {"model": {"w": torch.ones(2)}, "trainer": {"iteration": 2}}
    torch.save(state, tmp_path / "model_final.pth")
    (tmp_path / "last_checkpoint").write_text("model_final.pth")
    overrides = ("SOLVER.MAX_ITER", "6", "SOLVER.STEPS", "(4,)", "OUTPUT_DIR", str(tmp_path))
    cfg = _config(train_net, "configs/avss_synth/ovavss_effnet_yamnet_minilm.yaml", *overrides)
    assert train_net.finished_run(cfg) is None  # one process: 3 of 6 iterations done
    monkeypatch.setattr(comm, "get_world_size", lambda: 2)
    message = train_net.finished_run(cfg)
    assert "holds 3 iterations and SOLVER.MAX_ITER is 3 (6 scaled to 2 processes);" in message
