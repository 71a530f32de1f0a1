"""Helpers of the meta-architecture tests: a tiny OV-AVSS config and synthetic clips."""

import itertools
from typing import Optional, Sequence

import torch
from detectron2.config import get_cfg
from detectron2.data import MetadataCatalog
from detectron2.structures import Instances

from ovavss_d2 import add_ovavss_config

INSTANT_TEST = "configs/avss_synth/ovavss_effnet_yamnet_minilm_instant_test.yaml"
CLASSES = ["background", "dog", "violin", "cello", "lion", "tiger"]
BASE_IDS = [1, 2, 4]  # dog, violin, lion; cello and tiger are novel
_counter = itertools.count()


def register_meta_only(name: str) -> str:
    """Metadata of a 5-class dataset (no clips): enough to build the training vocabulary."""
    MetadataCatalog.get(name).set(
        stuff_classes=CLASSES,
        prompt_names=[(c,) for c in CLASSES],
        base_ids=BASE_IDS,
        novel_ids=[3, 5],
        ignore_label=255,
        evaluator_type="avss",
    )
    return name


def tiny_cfg(repo_root, **overrides):
    cfg = get_cfg()
    add_ovavss_config(cfg)
    cfg.merge_from_file(str(repo_root / INSTANT_TEST))
    name = register_meta_only(f"_ovavss_test_meta_{next(_counter)}")
    cfg.DATASETS.TRAIN = (name,)
    cfg.DATASETS.TEST = (name,)
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.EFFICIENTNET.WEIGHTS = "none"  # random backbone: fast, nothing to load
    cfg.MODEL.TEXT_ENCODER.TEMPLATES = "single"
    cfg.MODEL.TRANSFORMER_DECODER.DEC_LAYERS = 2
    for key, value in overrides.items():
        node = cfg
        *path, leaf = key.split(".")
        for p in path:
            node = getattr(node, p)
        setattr(node, leaf, value)
    return cfg


def make_clip(
    num_frames: int,
    size=(64, 80),
    classes: Sequence[int] = (0,),
    annotated: Optional[Sequence[bool]] = None,
    seed: int = 0,
    original_size=None,
) -> dict:
    """A mapper-style dict: coloured rectangles (one per 0-based dataset class) over noise."""
    g = torch.Generator().manual_seed(seed)
    h, w = size
    images = torch.randint(0, 60, (num_frames, 3, h, w), generator=g, dtype=torch.uint8)
    masks = torch.zeros(len(classes), num_frames, h, w, dtype=torch.bool)
    for i, c in enumerate(classes):
        y0, x0 = 4 + 20 * i, 6 + 10 * i
        masks[i, :, y0 : y0 + 24, x0 : x0 + 30] = True
        color = torch.tensor([50 * (c + 1) % 256, 200, 40 * c % 256], dtype=torch.uint8)
        images.permute(1, 0, 2, 3)[:, masks[i]] = color[:, None]
    ann = torch.ones(num_frames, dtype=torch.bool) if annotated is None else torch.tensor(annotated)
    masks[:, ~ann] = False
    inst = Instances((h, w))
    inst.gt_classes = torch.tensor(list(classes), dtype=torch.int64)
    inst.gt_masks = masks
    audio = torch.randn(num_frames, 1, 96, 64, generator=g)
    oh, ow = original_size or size
    return {
        "clip_id": f"clip{seed}",
        "images": images,
        "audio": audio,
        "instances": inst,
        "annotated": ann,
        "height": oh,
        "width": ow,
    }
