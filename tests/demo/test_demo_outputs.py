"""demo/demo.py's output folder (issue 18, "Outputs that lose nothing"): empty and ``~`` paths,
one run at a time per video and folder, SIGTERM cleaned up like Ctrl-C, write errors in one line,
earlier results kept until a new run has all of its own."""

import errno
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ovavss_d2.utils import preflight
from ovavss_d2.utils.run_output import RunOutput

REPO = Path(__file__).resolve().parents[2]
DEMO_FILE = REPO / "demo" / "demo.py"


@pytest.fixture(scope="module")
def clip(tmp_path_factory, make_video):
    """A 2 s video with its own audio track."""
    d = tmp_path_factory.mktemp("clip")
    return make_video(d / "clip.mp4", 2.0, audio_seconds=2.0)


def _cli(argv, timeout=120, env=None, cwd=REPO):
    return subprocess.run(
        [sys.executable, "-X", "importtime", str(DEMO_FILE), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
    )


def _errors(proc):
    return [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]


def _imported(proc):
    return {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}


def _listing(folder: Path):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_empty_output_refused(clip, tmp_path):
    proc = _cli(["--video", str(clip), "--output", ""], cwd=tmp_path)
    assert proc.returncode == 1
    assert _errors(proc) == [
        "demo.py: error: --output is empty: give a folder (. for the current one)"
    ]
    assert not any(tmp_path.iterdir())  # nothing written into the current folder
    assert "torch" not in _imported(proc)


@pytest.mark.parametrize("path", ["/proc/ovavss_out", "/proc/self/ovavss_out", "/sys/ovavss_out"])
def test_output_below_proc_or_sys(clip, path):
    if not Path(path).parent.is_dir():
        pytest.skip(f"no {Path(path).parent}")
    proc = _cli(["--video", str(clip), "--output", path])
    errors = _errors(proc)
    assert proc.returncode == 1
    assert len(errors) == 1, proc.stderr[-2000:]
    assert errors[0].startswith(f"demo.py: error: {path}: --output cannot be ")
    assert "torch" not in _imported(proc)


def test_tilde_output_with_equals_sign(clip, tmp_path, tiny_config_file):
    """``--output=~/x`` gets no tilde expansion from the shell: the demo expands it, in the check
    and in what it writes."""
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    env = {**os.environ, "HOME": str(home)}
    argv = ["--video", str(clip), "--config-file", str(tiny_config_file), "--output=~/x"]
    proc = _cli(argv, timeout=300, env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not any(cwd.iterdir())  # no ./~ folder
    assert _listing(home / "x") == [
        "clip.json",
        "clip_labels",
        "clip_labels/000005.png",
        "clip_labels/000015.png",
        "clip_overlay.mp4",
    ]
    assert f"overlay video: {home}/x/clip_overlay.mp4" in proc.stdout


def test_second_run_refused_while_the_first_runs(clip, tmp_path):
    """The lock of a running demo (here held by the test itself): the second run stops at once,
    before torch is imported, names the holder, and changes nothing."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "clip.json").write_text("{}")  # the running run's predecessor
    holder = RunOutput(out, "clip")
    holder.acquire()
    try:
        proc = _cli(["--video", str(clip), "--output", str(out)])
        assert proc.returncode == 1
        assert _errors(proc) == [
            f"demo.py: error: {out}: another demo run (pid {os.getpid()}) is writing the results "
            "of 'clip' there: wait for it to end, or give another --output"
        ]
        assert "torch" not in _imported(proc)
        assert _listing(out) == [".clip.lock", "clip.json"]
    finally:
        holder.release()
    assert _listing(out) == ["clip.json"]  # the lock file goes with the lock


def test_other_videos_into_one_folder_do_not_conflict(tmp_path):
    a, b = RunOutput(tmp_path, "a"), RunOutput(tmp_path, "b")
    a.acquire()
    b.acquire()
    with pytest.raises(preflight.InputError, match="another demo run"):
        RunOutput(tmp_path, "a").acquire()
    a.release()
    b.release()
    assert not any(tmp_path.iterdir())


def test_stale_lock_and_partial_results_taken_over(demo, predictor, clip, tmp_path, caplog):
    """A run killed with SIGKILL leaves its lock file (unlocked) and staging folder."""
    out = tmp_path / "out"
    out.mkdir()
    (out / ".clip.lock").write_text("999999\n")
    (out / ".clip.partial-999999" / "clip_labels").mkdir(parents=True)
    demo_logger = logging.getLogger("ovavss_d2.demo")
    demo_logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="ovavss_d2.demo")
    try:
        demo.main(["--video", str(clip), "--output", str(out)], predictor=predictor)
    finally:
        demo_logger.removeHandler(caplog.handler)
    assert "taking over the lock of demo run pid 999999" in caplog.text
    assert "the partial results of a run that was killed" in caplog.text
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_sequential_runs_replace_the_earlier_results(demo, predictor, clip, tmp_path):
    """A second run after the first has ended replaces its results, as before, and leaves no mix
    (every-frame label maps of the first run do not stay beside one-per-second ones)."""
    out = tmp_path / "out"
    base = ["--video", str(clip), "--output", str(out)]
    demo.main(base + ["--every-frame"], predictor=predictor)
    assert len(list((out / "clip_labels").glob("*.png"))) == 20
    summary = demo.main(base, predictor=predictor)
    assert _listing(out) == [
        "clip.json",
        "clip_labels",
        "clip_labels/000005.png",
        "clip_labels/000015.png",
        "clip_overlay.mp4",
    ]
    assert json.loads((out / "clip.json").read_text())["frames"] == summary["frames"]


@pytest.mark.parametrize(
    "error, fragment",
    [
        (
            OSError(errno.ENOSPC, "No space left on device"),
            "clip_labels/000015.png: No space left on device: free some space and run again",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "STAGED"),
            "clip_labels/000015.png: Permission denied",
        ),
        (OSError(errno.EROFS, "Read-only file system"), "000015.png: Read-only file system"),
    ],
    ids=["full disk", "no permission", "read-only"],
)
def test_write_errors_are_one_line_and_keep_earlier_results(
    demo, predictor, clip, tmp_path, monkeypatch, error, fragment
):
    """Simulated in-process (tests run as root, and no small file system can be mounted): the
    second label map cannot be written; the earlier run's results are left as they were."""
    from ovavss_d2.utils import visualization

    out = tmp_path / "out"
    base = ["--video", str(clip), "--output", str(out)]
    demo.main(base, predictor=predictor)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    save = visualization.save_label_png

    def failing_save(label_map, path):
        if Path(path).name == "000015.png":
            if error.filename == "STAGED":  # the OSError of open() names the file it opened
                raise PermissionError(error.errno, error.strerror, str(path))
            raise error
        save(label_map, path)

    monkeypatch.setattr(visualization, "save_label_png", failing_save)
    with pytest.raises(SystemExit) as info:
        demo.main(base, predictor=predictor)
    message = str(info.value.code)
    assert message.startswith(f"demo.py: error: {out}/")
    assert message.endswith(f"{fragment} (this run's results were removed)"), message
    assert ".partial" not in message
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_failed_first_run_leaves_no_folder(demo, predictor, clip, tmp_path, monkeypatch):
    from ovavss_d2.utils import visualization

    def full(label_map, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(visualization, "save_label_png", full)
    out = tmp_path / "a" / "b" / "out"
    with pytest.raises(SystemExit, match="No space left on device"):
        demo.main(["--video", str(clip), "--output", str(out)], predictor=predictor)
    assert not (tmp_path / "a").exists()  # every folder the run created is removed


@pytest.mark.parametrize(
    "signum, status, line",
    [
        (
            signal.SIGTERM,
            143,
            "demo.py: stopped by SIGTERM: this run's partial results were removed",
        ),
        (
            signal.SIGINT,
            130,
            "demo.py: interrupted (Ctrl-C): this run's partial results were removed",
        ),
    ],
    ids=["SIGTERM", "Ctrl-C"],
)
def test_stopped_mid_run_cleans_up(signum, status, line, tmp_path, make_video, tiny_config_file):
    """The signal comes once the first label map is written (no fixed sleep); the run leaves
    nothing of its own, and the earlier results stay."""
    video = make_video(tmp_path / "long.mp4", 40.0, audio_seconds=40.0)
    out = tmp_path / "out"
    out.mkdir()
    (out / "long.json").write_text('{"earlier": true}')
    cmd = [sys.executable, str(DEMO_FILE), "--video", str(video), "--every-frame"]
    cmd += ["--config-file", str(tiny_config_file), "--output", str(out)]
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 240
        while not list(out.glob(".long.partial-*/long_labels/*.png")):
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no label map written within 240 s"
            time.sleep(0.05)
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == line
    assert "Traceback" not in stderr
    assert _listing(out) == ["long.json"]
    assert (out / "long.json").read_text() == '{"earlier": true}'


def test_output_path_rules(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert preflight.output_path("~/x") == tmp_path / "x"
    assert preflight.output_path("out") == Path("out")
    for empty in ("", "  "):
        with pytest.raises(preflight.InputError, match="^OUTPUT_DIR is empty"):
            preflight.output_path(empty, "OUTPUT_DIR")
