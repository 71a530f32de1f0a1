"""Every TPAVI config merges, names the TPAVI meta-architecture and enables crop losses only in the
*_crop variants."""

from pathlib import Path

import pytest
from detectron2.config import get_cfg

from ovavss_d2 import add_ovavss_config
from ovavss_d2.baselines.tpavi import add_tpavi_config

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs" / "avsbench_object"
CONFIGS = sorted(p.name for p in CONFIG_DIR.glob("*.yaml"))


def load(name: str):
    cfg = get_cfg()
    add_ovavss_config(cfg)
    add_tpavi_config(cfg)
    cfg.merge_from_file(str(CONFIG_DIR / name))
    return cfg


def test_configs_found():
    assert {"tpavi_R50_s4.yaml", "tpavi_R50_ms3.yaml", "tpavi_R50_avss.yaml"} <= set(CONFIGS)


@pytest.mark.parametrize("name", CONFIGS)
def test_config_merges(name):
    cfg = load(name)
    t = cfg.MODEL.TPAVI
    assert cfg.MODEL.META_ARCHITECTURE == "TPAVIAVS"
    assert t.TASK in ("binary", "semantic")
    assert set(t.STAGES) <= set(t.IN_FEATURES)
    crop = (t.CROP_LOSS.CE_WEIGHT, t.CROP_LOSS.PAIRWISE_WEIGHT, t.CROP_LOSS.AUDIO_COS_WEIGHT)
    if "_crop" in name or "instant_test" in name:
        assert all(w > 0 for w in crop)
    else:
        assert not any(crop)
    if "synth" in name:  # offline: nothing to download
        assert (
            cfg.MODEL.BACKBONE.NAME == "D2EfficientNetLite"
            and cfg.MODEL.AUDIO_ENCODER.NAME == "YAMNet"
        )
        assert cfg.MODEL.WEIGHTS == "" and cfg.INPUT.AUDIO.LOG_OFFSET == 0.001
        assert cfg.DATASETS.TEST == ("avs_synth_test",)


def test_crop_variant_differs_from_its_base_only_in_crop_keys():
    base, crop = load("tpavi_effnet_yamnet_synth.yaml"), load("tpavi_effnet_yamnet_synth_crop.yaml")
    for cfg in (base, crop):
        cfg.MODEL.TPAVI.CROP_LOSS = None
        cfg.OUTPUT_DIR = ""
    assert base == crop


def test_tpavi_keys_come_only_from_add_tpavi_config():
    cfg = get_cfg()
    add_ovavss_config(cfg)
    assert "TPAVI" not in cfg.MODEL
    add_tpavi_config(cfg)
    assert cfg.MODEL.TPAVI.TASK == "binary" and cfg.MODEL.TPAVI.CROP_LOSS.MAX_CROPS == 32
