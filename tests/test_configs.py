"""Every YAML under configs/ merges into a config with add_ovavss_config and add_tpavi_config, and
every name it uses (meta-architecture, backbone, encoders, decoders, mapper, datasets, evaluator)
resolves."""

from pathlib import Path

import pytest
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import BACKBONE_REGISTRY, META_ARCH_REGISTRY

import ovavss_d2  # noqa: F401  registers everything
from ovavss_d2 import add_ovavss_config
from ovavss_d2.baselines.tpavi import add_tpavi_config
from ovavss_d2.data import MAPPERS
from ovavss_d2.evaluation import EVALUATOR_TYPES
from ovavss_d2.modeling.audio_encoder import AUDIO_ENCODER_REGISTRY
from ovavss_d2.modeling.pixel_decoder import PIXEL_DECODER_REGISTRY
from ovavss_d2.modeling.text_encoder import TEXT_ENCODER_REGISTRY
from ovavss_d2.modeling.transformer_decoder import TRANSFORMER_DECODER_REGISTRY

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
CONFIGS = sorted(CONFIG_DIR.rglob("*.yaml"))
# Detectron2 backbones are registered under their builder function names.
D2_BACKBONES = {"build_resnet_backbone", "build_resnet_fpn_backbone"}


def _load(path: Path):
    cfg = get_cfg()
    add_ovavss_config(cfg)
    add_tpavi_config(cfg)
    cfg.merge_from_file(str(path))  # raises on unknown keys
    return cfg


def test_configs_exist():
    assert any(p.parent.name == "avsbench_ov" for p in CONFIGS)
    assert any(p.parent.name == "avss_synth" for p in CONFIGS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_config_merges_and_names_resolve(path):
    cfg = _load(path)
    m = cfg.MODEL
    META_ARCH_REGISTRY.get(m.META_ARCHITECTURE)
    if m.BACKBONE.NAME not in D2_BACKBONES:
        BACKBONE_REGISTRY.get(m.BACKBONE.NAME)
    AUDIO_ENCODER_REGISTRY.get(m.AUDIO_ENCODER.NAME)
    if m.META_ARCHITECTURE == "OVAVSS":
        TEXT_ENCODER_REGISTRY.get(m.TEXT_ENCODER.NAME)
        PIXEL_DECODER_REGISTRY.get(m.PIXEL_DECODER.NAME)
        TRANSFORMER_DECODER_REGISTRY.get(m.TRANSFORMER_DECODER.NAME)
    assert cfg.INPUT.DATASET_MAPPER_NAME in MAPPERS
    for name in list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST):
        assert name in DatasetCatalog.list(), f"{path.name}: dataset {name} is not registered"
    for name in cfg.DATASETS.TEST:
        assert MetadataCatalog.get(name).evaluator_type in EVALUATOR_TYPES
    for key, weights in (
        ("MODEL.WEIGHTS", cfg.MODEL.WEIGHTS),
        ("BACKBONE", cfg.MODEL.BACKBONE.WEIGHTS),
    ):
        assert (
            not weights or "://" in weights or weights.startswith("/") or "/" in weights
        ), f"{key} WEIGHTS must be empty, a URL or a path, not a bare file name"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_resnet_configs_start_from_imagenet(path):
    # A ResNet has no weights of its own: training from a config without MODEL.WEIGHTS starts it
    # from ImageNet (MODEL.BACKBONE.WEIGHTS); D2EfficientNetLite loads its own (the key is empty).
    if path.name.startswith("Base-"):
        return
    cfg = _load(path)
    pretrained = cfg.MODEL.BACKBONE.WEIGHTS
    if cfg.MODEL.BACKBONE.NAME == "build_resnet_backbone" and not cfg.MODEL.WEIGHTS:
        assert pretrained == "detectron2://ImageNetPretrained/torchvision/R-50.pkl"
    elif cfg.MODEL.BACKBONE.NAME == "D2EfficientNetLite":
        assert pretrained == ""


def test_reference_hyperparameters():
    cfg = _load(CONFIG_DIR / "avsbench_ov" / "ovavss_R50.yaml")
    s, o, t = cfg.SOLVER, cfg.MODEL.OVAVSS, cfg.MODEL.TRANSFORMER_DECODER
    assert (s.OPTIMIZER, s.BASE_LR, s.WEIGHT_DECAY, s.BACKBONE_MULTIPLIER) == (
        "ADAMW",
        1e-4,
        0.05,
        0.1,
    )
    assert (s.MAX_ITER, tuple(s.STEPS), s.IMS_PER_BATCH) == (96228, (72171, 88209), 1)
    assert s.CLIP_GRADIENTS.ENABLED and s.CLIP_GRADIENTS.CLIP_TYPE == "full_model"
    assert s.CLIP_GRADIENTS.CLIP_VALUE == 0.01
    assert tuple(cfg.INPUT.MIN_SIZE_TRAIN) == (240, 360, 480) and cfg.INPUT.MIN_SIZE_TEST == 360
    assert (o.CLASS_WEIGHT, o.MASK_WEIGHT, o.DICE_WEIGHT, o.NO_OBJECT_WEIGHT) == (
        2.0,
        5.0,
        5.0,
        0.1,
    )
    assert (o.TRAIN_NUM_POINTS, o.OVERSAMPLE_RATIO, o.IMPORTANCE_SAMPLE_RATIO) == (12544, 3.0, 0.75)
    assert (t.NUM_QUERIES, t.DEC_LAYERS, t.DIM_FEEDFORWARD) == (100, 9, 2048)
    assert cfg.MODEL.PIXEL_DECODER.NUM_ENCODER_LAYERS == 6
    assert cfg.INPUT.SAMPLING_FRAME_NUM == 5
    assert (cfg.MODEL.BACKBONE.NAME, cfg.MODEL.RESNETS.DEPTH) == ("build_resnet_backbone", 50)
    assert (cfg.MODEL.AUDIO_ENCODER.NAME, cfg.MODEL.TEXT_ENCODER.CLIP_MODEL) == (
        "VGGish",
        "ViT-B/16",
    )
