"""Fixtures shared by every test folder: the repository root, scripts loaded by their path, and
scripts run as a user runs them."""

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence, Set

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load_script(relative_path: str, name: Optional[str] = None, register: bool = False):
    """Import the script at ``REPO / relative_path`` (train_net.py, demo/demo.py, tools/*.py,
    datasets/*.py: not modules of a package) as a module named ``name`` (default: the file's stem).
    ``register``: also put it in ``sys.modules`` (needed when its objects are pickled)."""
    path = REPO / relative_path
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (configs/, train_net.py, tools/, datasets/)."""
    return REPO


@pytest.fixture(scope="session")
def load_script():
    """``load_script(relative_path, name=None, register=False)``: a script of the repository
    imported by its path, a fresh module each call."""
    return _load_script


class CliRun(NamedTuple):
    """A script's run: exit code, its stderr lines other than ``-X importtime``'s, the modules it
    imported, and its whole stderr."""

    returncode: int
    errors: List[str]
    imported: Set[str]
    stderr: str


def _run_cli(script: str, argv: Sequence[str], timeout: float = 120, **kwargs) -> CliRun:
    """Run ``REPO / script`` with ``argv`` under ``python -X importtime`` (in the repository root
    unless ``cwd`` is given)."""
    kwargs.setdefault("cwd", REPO)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(REPO / script), *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
    lines = proc.stderr.splitlines()
    errors = [line for line in lines if not line.startswith("import time:")]
    imported = {line.split("|")[-1].strip() for line in lines if "|" in line}
    return CliRun(proc.returncode, errors, imported, proc.stderr)


@pytest.fixture(scope="session")
def run_cli():
    """``run_cli(script, argv, timeout=120, **subprocess_kwargs)`` -> :class:`CliRun`: a script
    run in a subprocess, with the modules it imported (to check that an input error stops before
    torch is imported)."""
    return _run_cli


def _devices() -> List:
    """``cpu`` always; ``cuda`` marked ``cuda`` and skipped where no GPU is visible."""
    no_gpu = not _cuda_available()
    return [
        "cpu",
        pytest.param(
            "cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(no_gpu, reason="needs a GPU")]
        ),
    ]


def _cuda_available() -> bool:
    """Whether torch sees a GPU (torch is imported here, when the fixture is built)."""
    import torch

    return torch.cuda.is_available()


@pytest.fixture(params=_devices())
def device(request) -> str:
    """The device a test runs on: ``cpu``, then ``cuda`` (marker ``cuda``; skipped without a GPU).
    A test that can use a GPU takes this fixture instead of hard-coding the CPU."""
    return request.param
