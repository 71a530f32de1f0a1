"""tools/device_check.sh: its steps, and ``--cpu`` end to end (every step on the CPU at small
sizes, one summary), so that the first GPU it meets is not its first run. A few minutes on 2 cores.
"""

import os
import subprocess
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "device_check.sh"
CPU_STEPS = [
    "tests_cuda",
    "prepare",
    "train_r50",
    "train_r50_reference",
    "amp_bf16",
    "amp_fp16",
    "eval_only",
    "resume",
    "demo",
    "benchmark",
]


def _script(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    """``bash tools/device_check.sh ARGS`` with these environment variables added."""
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=dict(os.environ, **env),
    )


def _rows(summary: str) -> Dict[str, List[str]]:
    """The summary table: step -> [exit status, seconds, key numbers, log]."""
    rows = {}
    for line in summary.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| ") and len(cells) == 5 and cells[0] not in ("step", "---"):
            rows[cells[0]] = cells[1:]
    return rows


def test_steps_listed():
    """Every part of the check is a step: AMP both ways, the reference config, the *_ngpu runs
    only with several devices, the rest of the suite (in the background) only on a GPU."""
    cpu = _script("--cpu", "--list")
    assert cpu.returncode == 0, cpu.stderr
    assert cpu.stdout.split() == CPU_STEPS
    gpus = _script("--list", NUM_GPUS="2")
    assert gpus.returncode == 0, gpus.stderr
    assert gpus.stdout.split() == [
        "tests_cuda",
        "tests_other",
        "prepare",
        "train_r50",
        "train_r50_ngpu",
        "train_r50_reference",
        "train_r50_reference_ngpu",
        *CPU_STEPS[4:],
    ]


def test_bad_option():
    proc = _script("--gpu")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "device_check.sh: error: unknown option --gpu (see --help)"


def test_cpu_end_to_end(tmp_path):
    """``--cpu``: every step runs and exits 0; the summary has one row per step with its
    numbers."""
    out = tmp_path / "check"
    proc = _script("--cpu", str(out), timeout=1500, DEVCHECK_BUDGET_S="1400", OMP_NUM_THREADS="1")
    summary = (out / "summary.md").read_text()
    rows = _rows(summary)
    assert list(rows) == CPU_STEPS, summary
    for step, (status, seconds, numbers, log) in rows.items():
        assert status == "0", f"{step}: {numbers}\n{(out / log).read_text()[-3000:]}"
        assert int(seconds) >= 0 and (out / log).is_file()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    numbers = {step: cells[2] for step, cells in rows.items()}
    # --cpu hides GPUs: the tests marked cuda are selected and skip
    assert "skipped" in numbers["tests_cuda"] and "passed" not in numbers["tests_cuda"]
    assert numbers["train_r50"].startswith("iter 1, total_loss ")
    assert numbers["resume"].startswith("resumed at iter 2, iter 2, total_loss ")
    assert numbers["eval_only"].startswith("mIoU ")
    assert "label PNGs" in numbers["demo"]
    assert numbers["benchmark"].startswith("64x64, T=2: train ")
    # the tests marked cuda are listed (skipped without a GPU)
    assert "## Tests marked `cuda`" in summary
    assert "tests/modeling/meta_arch/test_ovavss.py" in summary.split("## Tests marked")[1]
    assert not list(out.rglob("*.pth")), "the CPU run's checkpoints are removed"
