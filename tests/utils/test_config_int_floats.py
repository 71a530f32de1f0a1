"""Config merges of train_net.py, the demo and the tools accept an int for a float key."""

import pytest
from detectron2.config import get_cfg

from ovavss_d2 import add_ovavss_config
from ovavss_d2.utils.preflight import InputError, ints_for_float_keys, merge_config

PENALTY = "MODEL.CLASS_SOURCES.BASE_BIAS"  # a float key (default 0.0)


def _cfg():
    cfg = get_cfg()
    add_ovavss_config(cfg)
    return cfg


@pytest.fixture
def config_file(tmp_path):
    """A config whose base sets a float key to an int, and that sets another one itself."""
    base = tmp_path / "base.yaml"
    base.write_text("MODEL:\n  CLASS_SOURCES:\n    BASE_BIAS: 3\n")
    path = tmp_path / "child.yaml"
    path.write_text(f"_BASE_: {base}\nSOLVER:\n  BASE_LR: 1\n  MAX_ITER: 7\n")
    return path


def test_ints_in_yaml_and_overrides_become_floats(config_file):
    cfg = _cfg()
    merge_config(cfg, config_file, ["MODEL.OVAVSS.TEST.SCORE_THRESHOLD", "0"], "overrides")
    assert cfg.MODEL.CLASS_SOURCES.BASE_BIAS == 3.0
    assert type(cfg.MODEL.CLASS_SOURCES.BASE_BIAS) is float
    assert cfg.SOLVER.BASE_LR == 1.0 and type(cfg.SOLVER.BASE_LR) is float
    assert cfg.MODEL.OVAVSS.TEST.SCORE_THRESHOLD == 0.0
    assert type(cfg.MODEL.OVAVSS.TEST.SCORE_THRESHOLD) is float
    assert cfg.SOLVER.MAX_ITER == 7 and type(cfg.SOLVER.MAX_ITER) is int  # int keys stay ints


@pytest.mark.parametrize(
    "key, value",
    [
        (PENALTY, "True"),  # a bool is not a number here
        (PENALTY, "high"),
        ("SOLVER.MAX_ITER", "10.5"),  # no float for an int key (it would be truncated)
        ("MODEL.OVAVSS.TEST.SEMANTIC_FROM", "1"),
    ],
)
def test_other_type_mismatches_still_fail(config_file, key, value):
    with pytest.raises(InputError, match=f"^overrides: Type mismatch .* {key}"):
        merge_config(_cfg(), config_file, [key, value], "overrides")


def test_yacs_is_unchanged_outside_the_block():
    """The coercion wraps yacs' own check (yacs.config._check_and_coerce_cfg_value_type) only
    inside the block; if yacs stopped calling that function, the first assertion would fail."""
    cfg = _cfg()
    with ints_for_float_keys():
        cfg.merge_from_list([PENALTY, "2"])
    assert cfg.MODEL.CLASS_SOURCES.BASE_BIAS == 2.0
    with pytest.raises(ValueError, match="Type mismatch"):
        cfg.merge_from_list([PENALTY, "0"])
