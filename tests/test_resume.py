"""Exact resume: a run stopped after a checkpoint and continued with --resume receives the batches
and gives the losses (bit for bit, CPU) of the uninterrupted run, and metrics.json holds no
iteration twice."""

import importlib.util
import itertools
import json
import sys
from pathlib import Path

import pytest
from detectron2.engine import HookBase

from ovavss_d2.data.datasets import register_avsbench_semantic
from ovavss_d2.utils.testing import make_fake_avsbench

ROOT = Path(__file__).resolve().parents[1]
INSTANT_TEST = ROOT / "configs/avss_synth/ovavss_effnet_yamnet_minilm_instant_test.yaml"
_counter = itertools.count()


class Stop(Exception):
    """Stands in for a kill after a given iteration."""


@pytest.fixture(scope="module")
def train_net():
    spec = importlib.util.spec_from_file_location("train_net", ROOT / "train_net.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_net"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def train_name(tmp_path_factory):
    root = tmp_path_factory.mktemp("fake") / "AVSBench-semantic"
    make_fake_avsbench(root, clips_per_split=8, size=(48, 64), subsets=("v1s",))
    prefix = f"rs{next(_counter)}_"
    register_avsbench_semantic(root, name_prefix=prefix)
    return prefix + "avsbench_ov_train_base"  # the 4 even clips: base classes only


class Recorder(HookBase):
    """Per iteration: total loss and the clips of the batch; raises Stop after ``stop_after``."""

    def __init__(self, log, stop_after=None):
        self.log, self.stop_after = log, stop_after

    def after_step(self):
        it = self.trainer.iter
        loss = self.trainer.storage.history("total_loss").latest()
        self.log.append((it, loss, tuple(self.trainer.last_batch_clips)))
        if self.stop_after is not None and it == self.stop_after:
            raise Stop(it)


def _run(train_net, monkeypatch, out, train_name, log, stop_after=None, resume=False, seed=7):
    trainer_cls = train_net.Trainer

    class Recording(trainer_cls):
        def build_hooks(self):
            return super().build_hooks() + [Recorder(log, stop_after)]

        def run_step(self):
            # the clips of this iteration's batch, as the model receives them
            loader_iter = self._trainer._data_loader_iter
            batch = next(loader_iter)
            self.last_batch_clips = [d["clip_id"] if "clip_id" in d else repr(d) for d in batch]
            self._trainer._data_loader_iter = itertools.chain([batch], loader_iter)
            super().run_step()
            self._trainer._data_loader_iter = loader_iter

    monkeypatch.setattr(train_net, "Trainer", Recording)
    argv = ["--config-file", str(INSTANT_TEST)] + (["--resume"] if resume else [])
    argv += [
        "MODEL.DEVICE",
        "cpu",
        "MODEL.EFFICIENTNET.WEIGHTS",
        "none",
        "MODEL.TEXT_ENCODER.TEMPLATES",
        "single",
        "DATASETS.TRAIN",
        f"('{train_name}',)",
        "DATASETS.TEST",
        "()",
        "SOLVER.IMS_PER_BATCH",
        "2",
        "SOLVER.MAX_ITER",
        "6",
        "SOLVER.STEPS",
        "(4,)",
        "SOLVER.CHECKPOINT_PERIOD",
        "3",
        "SEED",
        str(seed),
        "OUTPUT_DIR",
        str(out),
    ]
    args = train_net.get_parser().parse_args(argv)
    try:
        train_net.main(args)
    except Stop:
        pass
    finally:
        monkeypatch.setattr(train_net, "Trainer", trainer_cls)


def test_resume_continues_the_run_exactly(train_net, train_name, tmp_path, monkeypatch):
    full = []
    _run(train_net, monkeypatch, tmp_path / "full", train_name, full)
    assert [it for it, *_ in full] == list(range(6))

    first, second = [], []
    out = tmp_path / "stopped"
    _run(train_net, monkeypatch, out, train_name, first, stop_after=3)
    assert (out / "last_checkpoint").read_text().strip() == "model_0000002.pth"
    assert not (out / "model_final.pth").exists()
    # The stop left metrics of iteration 3, after the checkpoint of iteration 2.
    written = [json.loads(line)["iteration"] for line in (out / "metrics.json").open()]
    assert written[-1] == 3

    # SEED -1: a fresh random seed; the resumed run must take the data seed of the checkpoint.
    _run(train_net, monkeypatch, out, train_name, second, resume=True, seed=-1)
    assert [it for it, *_ in second] == [3, 4, 5]
    # The same clips in the same batches, and bit-identical losses.
    assert [c for *_, c in second] == [c for *_, c in full[3:]]
    assert [loss for _, loss, _ in second] == [loss for _, loss, _ in full[3:]]
    assert first == full[:4]  # same seed, same run up to the stop
    assert len({c for *_, c in full}) > 1  # the stream is shuffled: a restart would show

    iterations = [json.loads(line)["iteration"] for line in (out / "metrics.json").open()]
    assert len(iterations) == len(set(iterations)), iterations
    assert iterations[-1] == 5
