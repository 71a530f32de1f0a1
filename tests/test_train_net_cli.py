"""train_net.py with bad inputs: one line ``train_net.py: error: <file>: <problem>``, exit status
non-zero, no traceback, no output folder; the checks run before torch is imported."""

import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TRAIN_NET = ROOT / "train_net.py"
INSTANT_TEST = ROOT / "configs/avss_synth/ovavss_effnet_yamnet_minilm_instant_test.yaml"
NO_GPU = not any(Path(p).exists() for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("tn_inputs")
    (d / "bad.yaml").write_text("SOLVER: [1, 2\n")
    (d / "list.yaml").write_text("- 1\n- 2\n")
    (d / "empty.pth").write_bytes(b"")
    (d / "junk.pkl").write_bytes(b"GIF89a not weights")
    good = d / "good.pth"
    torch.save({"model": {"w": torch.zeros(64, 64)}}, good)
    (d / "truncated.pth").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (d / "a_file").write_text("x")
    resume = d / "resume_out"
    resume.mkdir()
    (resume / "last_checkpoint").write_text("model_0000099.pth")
    return {"dir": str(d)}


CASES = {
    "malformed yaml": (["--config-file", "{dir}/bad.yaml"], "{dir}/bad.yaml: malformed YAML at"),
    "not a mapping": (["--config-file", "{dir}/list.yaml"], "a config is a YAML mapping"),
    "missing config": (["--config-file", "{dir}/no.yaml"], "config file '{dir}/no.yaml' not"),
    "odd overrides": (["MODEL.WEIGHTS"], "they come as KEY VALUE pairs"),
    "missing weights": (["MODEL.WEIGHTS", "{dir}/no.pth"], "{dir}/no.pth: no such file"),
    "empty weights": (["MODEL.WEIGHTS", "{dir}/empty.pth"], "{dir}/empty.pth: the file is empty"),
    "corrupt weights": (["MODEL.WEIGHTS", "{dir}/junk.pkl"], "neither a PyTorch checkpoint"),
    "truncated weights": (["MODEL.WEIGHTS", "{dir}/truncated.pth"], "an incomplete zip archive"),
    "output below a file": (["OUTPUT_DIR", "{dir}/a_file/out"], "lies below the file"),
    "empty output": (["OUTPUT_DIR", ""], "OUTPUT_DIR is empty: give a folder"),
    "resume of a missing checkpoint": (
        ["--resume", "OUTPUT_DIR", "{dir}/resume_out"],
        "{dir}/resume_out/model_0000099.pth: no such file",
    ),
    "bad machine rank": (["--num-machines", "2", "--machine-rank", "2"], "--machine-rank 2"),
    # Training and evaluation options (issue 18).
    "batch of 0 clips": (["SOLVER.IMS_PER_BATCH", "0"], "SOLVER.IMS_PER_BATCH 0: must be at least"),
    "negative batch": (["SOLVER.IMS_PER_BATCH", "-4"], "SOLVER.IMS_PER_BATCH -4: must be at"),
    "batch not divisible by the processes": (
        ["--num-gpus", "2", "SOLVER.IMS_PER_BATCH", "3", "SOLVER.REFERENCE_WORLD_SIZE", "0"],
        "SOLVER.IMS_PER_BATCH 3: not divisible by the 2 processes",
    ),
    "batch not divisible by the reference processes": (
        ["--num-gpus", "2", "SOLVER.IMS_PER_BATCH", "3", "SOLVER.REFERENCE_WORLD_SIZE", "2"],
        "SOLVER.IMS_PER_BATCH 3: not divisible by SOLVER.REFERENCE_WORLD_SIZE 2",
    ),
    "negative iterations": (["SOLVER.MAX_ITER", "-5"], "SOLVER.MAX_ITER -5: must be at least 1"),
    "zero iterations": (["SOLVER.MAX_ITER", "0"], "SOLVER.MAX_ITER 0: must be at least 1"),
    "negative learning rate": (["SOLVER.BASE_LR", "-0.1"], "SOLVER.BASE_LR -0.1: must not be"),
    "unsorted steps": (["SOLVER.STEPS", "(30, 10)"], "SOLVER.STEPS (30, 10): must be strictly"),
    "steps beyond the last iteration": (
        ["SOLVER.STEPS", "(30, 50)"],
        "SOLVER.STEPS (30, 50): steps at or beyond SOLVER.MAX_ITER 40",
    ),
    "empty training set list": (["DATASETS.TRAIN", "()"], "DATASETS.TRAIN: empty, nothing to"),
    "eval-only without weights": (["--eval-only"], "--eval-only: MODEL.WEIGHTS is empty"),
    "eval-only without test sets": (
        ["--eval-only", "MODEL.WEIGHTS", "{dir}/good.pth", "DATASETS.TEST", "()"],
        "--eval-only: DATASETS.TEST is empty, nothing to evaluate",
    ),
}
if NO_GPU:
    CASES["cuda without gpu"] = (["MODEL.DEVICE", "cuda"], "MODEL.DEVICE cuda: this machine")


def _split(argv):
    flags, opts, i = [], [], 0
    while i < len(argv):
        if argv[i].startswith("--"):
            takes_value = argv[i] not in ("--resume", "--eval-only")
            flags += argv[i : i + 1 + takes_value]
            i += 1 + takes_value
        else:
            opts.append(argv[i])
            i += 1
    return flags, opts


@pytest.mark.parametrize("case", sorted(CASES))
def test_preflight_errors(case, files, tmp_path, run_cli):
    extra, fragment = CASES[case]
    flags, opts = _split([a.format(**files) for a in extra])
    if "--config-file" not in flags:
        flags += ["--config-file", str(INSTANT_TEST)]
    if not any(o == "OUTPUT_DIR" for o in opts):
        opts += ["OUTPUT_DIR", str(tmp_path / "out")]
    proc = run_cli("train_net.py", [*flags, *opts])
    errors, imported = proc.errors, proc.imported
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(errors) == 1, errors
    assert errors[0].startswith("train_net.py: error: ")
    assert fragment.format(**files) in errors[0]
    assert "torch" not in imported and "detectron2" not in imported
    assert not (tmp_path / "out").exists()


def test_unknown_key_after_import(tmp_path):
    """The config schema needs Detectron2: still one line, and no output folder."""
    proc = subprocess.run(
        [
            sys.executable,
            str(TRAIN_NET),
            "--config-file",
            str(INSTANT_TEST),
            "MODEL.NO_SUCH_KEY",
            "1",
            "OUTPUT_DIR",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert lines == [
        "train_net.py: error: command-line overrides: Non-existent key: MODEL.NO_SUCH_KEY"
    ], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def train_net(load_script):
    return load_script("train_net.py", "train_net_cli")


def test_named_clip_model_offline(train_net, tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    from ovavss_d2.modeling.text_encoder import clip_loader

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    clip_loader._load.cache_clear()
    with pytest.raises(clip_loader.ClipModelError) as info:
        clip_loader.load_clip("ViT-B/16", download_root=str(tmp_path))
    message = str(info.value)
    assert message.startswith("MODEL.TEXT_ENCODER.CLIP_MODEL 'ViT-B/16': not in the cache (")
    assert str(tmp_path / "ViT-B-16.pt") in message and "name resolution" in message
    assert "path of a local CLIP checkpoint" in message
    # train_net reports it as one line.
    assert isinstance(info.value, train_net.INPUT_ERRORS)


def test_cli_turns_input_errors_into_one_line(train_net, monkeypatch):
    def failing_launch(*args, **kwargs):
        raise train_net.CheckpointError("w.pkl: refused to load the global 'os.system'")

    monkeypatch.setattr(train_net, "launch", failing_launch)
    args = train_net.get_parser().parse_args(["--config-file", str(INSTANT_TEST)])
    with pytest.raises(SystemExit) as info:
        train_net.cli(args)
    assert (
        str(info.value.code) == "train_net.py: error: w.pkl: refused to load the global 'os.system'"
    )


class _Marker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_eval_only_refuses_a_pickle_payload(train_net, tmp_path):
    marker = tmp_path / "marker"
    weights = tmp_path / "evil.pkl"
    with open(weights, "wb") as f:
        pickle.dump({"model": {}, "__author__": _Marker(str(marker))}, f, 2)
    args = train_net.get_parser().parse_args(
        [
            "--config-file",
            str(INSTANT_TEST),
            "--eval-only",
            "MODEL.WEIGHTS",
            str(weights),
            "MODEL.EFFICIENTNET.WEIGHTS",
            "none",
            "DATASETS.TEST",
            "()",
            "OUTPUT_DIR",
            str(tmp_path / "out"),
        ]
    )
    train_net.preflight.check_weights(str(weights))  # a pickle header: read contents are checked
    with pytest.raises(train_net.CheckpointError, match="refused to load the global 'io.open'"):
        train_net.main(args)
    assert not marker.exists()


def test_read_only_and_unwritable_output(train_net, tmp_path, monkeypatch):
    """Root may write anywhere: the file-system answers are simulated."""
    import os

    from ovavss_d2.utils import preflight

    class ReadOnly:
        f_flag = os.ST_RDONLY

    monkeypatch.setattr(os, "statvfs", lambda path: ReadOnly())
    with pytest.raises(preflight.InputError, match="lies on a read-only file system"):
        preflight.check_output_dir(str(tmp_path / "out"), "OUTPUT_DIR")
    monkeypatch.undo()
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(preflight.InputError, match="cannot be written: no write permission on"):
        preflight.check_output_dir(str(tmp_path / "out"), "OUTPUT_DIR")


def test_output_dir_tilde_expanded_and_unwritable_one_line(train_net, tmp_path, monkeypatch):
    """``OUTPUT_DIR ~/run`` means the home folder's run (not ./~/run); a folder that cannot be
    created (below /proc) is one InputError, which cli() prints as one line."""
    from ovavss_d2.utils import preflight

    monkeypatch.setenv("HOME", str(tmp_path))
    parse = train_net.get_parser().parse_args
    args = parse(["--config-file", str(INSTANT_TEST), "OUTPUT_DIR", "~/run"])
    assert train_net.load_config(args).OUTPUT_DIR == str(tmp_path / "run")
    if not Path("/proc/self").is_dir():
        pytest.skip("no /proc")
    args = parse(["--config-file", str(INSTANT_TEST), "OUTPUT_DIR", "/proc/ovavss_run"])
    with pytest.raises(preflight.InputError) as info:
        train_net.setup(args)
    assert str(info.value).startswith("/proc/ovavss_run: OUTPUT_DIR cannot be written: ")
