"""Fixtures of the data tests: tiny AVSBench-format datasets written by ovavss_d2.utils.testing."""

import uuid

import pytest

from ovavss_d2.utils.testing import make_fake_avsbench


@pytest.fixture(scope="session")
def fake_avsbench(tmp_path_factory):
    """Two clips per subset and split (train: one base-only, one with a novel class); read-only."""
    root = tmp_path_factory.mktemp("d2") / "AVSBench-semantic"
    return make_fake_avsbench(root, clips_per_split=2, seed=0)


@pytest.fixture
def unique_prefix():
    """A dataset-name prefix no other test uses (the catalogs are global to the process, and a
    process may run the tests twice, as mutmut does)."""
    return f"t{uuid.uuid4().hex[:8]}_"
