"""Fixtures of the audio-encoder tests: the frozen-encoder check, Tux Paint recordings."""

import glob

import pytest

TUXPAINT_STAMPS = "/usr/share/tuxpaint/stamps"


def _assert_frozen(model):
    assert not any(p.requires_grad for p in model.parameters())
    model.train()
    assert not model.training, "a frozen encoder stays in eval mode"


@pytest.fixture
def assert_frozen():
    """``assert_frozen(model)``: no parameter trains and ``train()`` keeps eval mode."""
    return _assert_frozen


@pytest.fixture
def tuxpaint_sound():
    """``find(name)``: path of a tuxpaint-stamps-default recording such as "vacuum_cleaner";
    skips the test when the Debian package is not installed."""

    def find(name: str) -> str:
        hits = glob.glob(f"{TUXPAINT_STAMPS}/**/{name}.ogg", recursive=True)
        if not hits:
            pytest.skip(f"tuxpaint-stamps-default recording {name}.ogg is not installed")
        return hits[0]

    return find
