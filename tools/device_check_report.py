#!/usr/bin/env python
"""The summary of ``tools/device_check.sh``: one markdown table (step, exit status, seconds, key
numbers, log) from the steps' record and logs, then the CUDA-marked tests' outcomes.

    python tools/device_check_report.py OUT_DIR      # reads OUT_DIR/steps.tsv, writes summary.md

``steps.tsv`` holds one line per step, tab-separated: name, exit status (a number, or text such
as ``not run``), seconds, log path. ``OUT_DIR/header.md`` (machine, versions) goes on top. No
torch import: it runs in a fraction of a second after every step.
"""

import json
import re
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional

TIMEOUT_STATUSES = {"124": "124 (time limit)", "137": "137 (killed at the time limit)"}
PYTEST_COUNTS = re.compile(r"\b\d+ (passed|failed|skipped|deselected|errors?|xfailed|xpassed)\b")
EVENTS = re.compile(r"\biter: (\d+)\s+total_loss: ([-\d.e+naif]+)")
SECONDS_PER_ITER = re.compile(r"\btime: ([\d.]+)")
MAX_MEM = re.compile(r"\bmax_mem: (\d+)M")
START_ITER = re.compile(r"Starting training from iteration (\d+)")
# "train_net.py: error: ...", "RuntimeError: ...", "Killed" (not compiler flags like -Werror=)
ERROR_LINE = re.compile(r"(\w*Error|\berror|Exception):|\bKilled$")


def read_lines(path: Path) -> List[str]:
    """The lines of a log (none when it is missing or unreadable)."""
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return []


def tests_numbers(log: Path, out: Path) -> str:
    """pytest's final counts line."""
    counts = [line for line in read_lines(log) if PYTEST_COUNTS.search(line)]
    return counts[-1].strip("= ") if counts else "no pytest summary line"


def training_numbers(log: Path, out: Path) -> str:
    """Last logged iteration, its total loss, seconds per iteration and CUDA peak memory."""
    lines = read_lines(log)
    events = [line for line in lines if EVENTS.search(line)]
    if not events:
        return "no iteration logged"
    iteration, loss = EVENTS.search(events[-1]).groups()
    parts = [f"iter {iteration}", f"total_loss {loss}"]
    start = [START_ITER.search(line).group(1) for line in lines if START_ITER.search(line)]
    if start and start[-1] != "0":
        parts.insert(0, f"resumed at iter {start[-1]}")
    speed = SECONDS_PER_ITER.search(events[-1])
    if speed:
        parts.append(f"{float(speed.group(1)):.3f} s/iter")
    memory = MAX_MEM.search(events[-1])
    if memory:
        parts.append(f"max_mem {memory.group(1)} MB")
    return ", ".join(parts)


def evaluation_numbers(log: Path, out: Path) -> str:
    """The first metrics of detectron2's ``copypaste:`` lines (names, then values)."""
    rows = [line.split("copypaste: ", 1)[1] for line in read_lines(log) if "copypaste: " in line]
    tables = [r for r in rows if not r.startswith("Task:")]
    if len(tables) < 2:
        return "no metrics logged"
    names, values = tables[0].split(","), tables[1].split(",")
    return ", ".join(f"{n} {v}" for n, v in list(zip(names, values))[:4])


def demo_numbers(log: Path, out: Path) -> str:
    """Files the demo wrote."""
    files = [p for p in (out / "demo").rglob("*") if p.is_file()] if (out / "demo").is_dir() else []
    pngs = sum(p.suffix == ".png" for p in files)
    return f"{len(files)} files written ({pngs} label PNGs)"


def benchmark_numbers(log: Path, out: Path) -> str:
    """Training s/iteration and peak memory, inference ms/clip, at the benchmark's size."""
    try:
        result = json.loads((out / "benchmark.json").read_text())
    except (OSError, ValueError):
        return "no benchmark.json"
    size = "x".join(map(str, result["frame_size"]))
    return (
        f"{size}, T={result['frames_per_clip']}: train {result['train_s_per_iter']:.3f} s/iter, "
        f"peak {result['peak_memory_training_MB']:.0f} MB ({result['peak_memory_kind']}); "
        f"inference {result['inference_ms_per_clip']:.0f} ms/clip, "
        f"peak {result['peak_memory_inference_MB']:.0f} MB"
    )


def prepare_numbers(log: Path, out: Path) -> str:
    """What the preparation wrote (``prepare.json``)."""
    try:
        facts = json.loads((out / "prepare.json").read_text())
    except (OSError, ValueError):
        return "no prepare.json"
    return ", ".join(f"{k} {v}" for k, v in facts.items())


NUMBERS: Dict[str, Callable[[Path, Path], str]] = {
    "tests": tests_numbers,
    "prepare": prepare_numbers,
    "train": training_numbers,
    "amp": training_numbers,
    "resume": training_numbers,
    "eval": evaluation_numbers,
    "demo": demo_numbers,
    "benchmark": benchmark_numbers,
}


def key_numbers(step: str, log: Path, out: Path) -> str:
    """The key numbers of one step, by the first word of its name."""
    reader: Optional[Callable] = NUMBERS.get(step.split("_")[0])
    return reader(log, out) if reader else ""


def last_error(log: Path) -> str:
    """A failed step's last line naming an error (else its last line), shortened."""
    lines = [line.strip() for line in read_lines(log) if line.strip()]
    errors = [line for line in lines if ERROR_LINE.search(line)]
    line = (errors or lines or ["(empty log)"])[-1]
    return line if len(line) <= 160 else line[:157] + "..."


def cuda_tests(log: Path) -> List[str]:
    """pytest ``-rA`` short-summary lines (one per passed or failed test, grouped skips)."""
    return [
        line
        for line in read_lines(log)
        if re.match(r"(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b", line)
    ]


def summary(out: Path) -> str:
    """The summary's markdown."""
    header = out / "header.md"
    text = header.read_text() if header.is_file() else "# ovavss_d2 device check\n"
    rows = [line.split("\t") for line in read_lines(out / "steps.tsv") if line.strip()]
    table = ["| step | exit status | seconds | key numbers | log |", "|---|---|---:|---|---|"]
    for name, status, seconds, log in rows:
        numbers = ""
        if log:
            numbers = key_numbers(name, Path(log), out)
            if status != "0":
                numbers = f"{numbers}; {last_error(Path(log))}".strip("; ")
        status = TIMEOUT_STATUSES.get(status, status)
        shown = Path(log).name if log and Path(log).parent == out else log
        cells = [name, status, seconds, numbers.replace("|", "\\|"), shown]
        table.append("| " + " | ".join(cells) + " |")
    text += "\n" + "\n".join(table) + "\n"
    for name, _, _, log in rows:
        if name == "tests_cuda" and log:
            lines = cuda_tests(Path(log)) or ["(none)"]
            text += "\n## Tests marked `cuda`\n\n" + "\n".join(f"- `{x}`" for x in lines) + "\n"
    return text


def main(argv: List[str]) -> int:
    if len(argv) != 1:
        print("usage: device_check_report.py OUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[0]).resolve()
    (out / "summary.md").write_text(summary(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
