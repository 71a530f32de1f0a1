"""Fixtures shared by every test folder: the repository root, scripts loaded by their path."""

import importlib.util
import sys
from pathlib import Path
from typing import Optional

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
