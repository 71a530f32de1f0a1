"""--resume of a finished run (issue 18): with the same SOLVER.MAX_ITER it says so, exits 0 and
changes no file; with a larger one it continues from the final iteration and keeps the first run's
metrics; last_checkpoint always names a checkpoint with a training state, never the weights-only
export. The runs are subprocesses of train_net.py on a tiny generated dataset (CPU)."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ovavss_d2.checkpoint import find_resumable_checkpoint, training_iteration
from ovavss_d2.utils.testing import make_fake_avsbench

ROOT = Path(__file__).resolve().parents[1]
TRAIN_NET = ROOT / "train_net.py"
INSTANT_TEST = ROOT / "configs/avss_synth/ovavss_effnet_yamnet_minilm_instant_test.yaml"


def _train(datasets, out, max_iter, resume=False):
    argv = [sys.executable, str(TRAIN_NET), "--config-file", str(INSTANT_TEST)]
    argv += ["--resume"] if resume else []
    argv += [
        "MODEL.DEVICE",
        "cpu",
        "MODEL.EFFICIENTNET.WEIGHTS",
        "none",
        "MODEL.TEXT_ENCODER.TEMPLATES",
        "single",
        "DATASETS.TRAIN",
        "('avsbench_ov_train_base',)",
        "DATASETS.TEST",
        "()",
        "SOLVER.IMS_PER_BATCH",
        "2",
        "SOLVER.MAX_ITER",
        str(max_iter),
        "SOLVER.STEPS",
        "(2,)",
        "SEED",
        "3",
        "OUTPUT_DIR",
        str(out),
    ]
    env = dict(os.environ, DETECTRON2_DATASETS=str(datasets))
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)


def _snapshot(folder):
    """Every file below ``folder``: (modification time in ns, SHA-256)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).digest())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _iterations(out):
    return [json.loads(line)["iteration"] for line in (out / "metrics.json").open()]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    make_fake_avsbench(
        root / "AVSBench-semantic", clips_per_split=8, size=(48, 64), subsets=("v1s",)
    )
    return root


@pytest.fixture(scope="module")
def finished(datasets, tmp_path_factory):
    """A run of SOLVER.MAX_ITER 4 that finished."""
    out = tmp_path_factory.mktemp("finished") / "out"
    proc = _train(datasets, out, 4)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_last_checkpoint_names_a_resumable_checkpoint(finished):
    assert (finished / "last_checkpoint").read_text().strip() == "model_final.pth"
    assert training_iteration(str(finished / "model_final.pth")) == 3  # the final iteration
    final = torch.load(finished / "model_final.pth", map_location="cpu", weights_only=True)
    assert final["trainer"]["_trainer"]["optimizer"]["state"]
    weights = torch.load(finished / "model_weights.pth", map_location="cpu", weights_only=True)
    # The export: weights only (YAMNet, frozen, by its source), not named in last_checkpoint.
    assert set(weights) == {"model", "frozen_sources"}
    assert set(weights["frozen_sources"]) == {"audio_encoder"} == set(final["frozen_sources"])
    assert training_iteration(str(finished / "model_weights.pth")) is None
    assert not list(finished.glob("*.tmp"))


def test_resume_of_a_finished_run_changes_nothing(datasets, finished):
    before = _snapshot(finished)
    proc = _train(datasets, finished, 4, resume=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "the run is finished" in proc.stdout and "nothing changed" in proc.stdout, proc.stdout
    assert _snapshot(finished) == before


def test_resume_with_a_larger_max_iter_continues(datasets, finished, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    first = (out / "metrics.json").read_text().splitlines()
    assert _iterations(out) == [3]  # the writers run every 20 iterations and at the end
    proc = _train(datasets, out, 6, resume=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Starting training from iteration 4" in (out / "log.txt").read_text()
    assert (out / "metrics.json").read_text().splitlines()[: len(first)] == first  # kept
    assert _iterations(out) == [3, 5]
    assert (out / "last_checkpoint").read_text().strip() == "model_final.pth"
    assert training_iteration(str(out / "model_final.pth")) == 5


def _fake_checkpoint(path, iteration=None):
    data = {"model": {"w": torch.zeros(2)}}
    if iteration is not None:
        data["trainer"] = {"iteration": iteration, "hooks": {}}
    torch.save(data, path)


def test_a_tagged_weights_export_falls_back_to_the_latest_training_state(tmp_path):
    """Folders of earlier versions: last_checkpoint names model_weights.pth."""
    _fake_checkpoint(tmp_path / "model_weights.pth")
    _fake_checkpoint(tmp_path / "model_0000009.pth", 9)
    _fake_checkpoint(tmp_path / "model_final.pth", 15)
    (tmp_path / "last_checkpoint").write_text("model_weights.pth")
    assert find_resumable_checkpoint(str(tmp_path)) == (str(tmp_path / "model_final.pth"), 15)
    (tmp_path / "last_checkpoint").write_text("model_0000009.pth")
    assert find_resumable_checkpoint(str(tmp_path)) == (str(tmp_path / "model_0000009.pth"), 9)


def test_no_training_state_is_not_resumed(tmp_path):
    _fake_checkpoint(tmp_path / "model_weights.pth")
    assert find_resumable_checkpoint(str(tmp_path)) is None  # no last_checkpoint
    (tmp_path / "last_checkpoint").write_text("model_weights.pth")
    assert find_resumable_checkpoint(str(tmp_path)) is None
