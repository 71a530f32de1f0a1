"""The mapper through Detectron2's standard loaders, batch size 2, with and without workers."""

import itertools

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.data import build_detection_test_loader, build_detection_train_loader

from ovavss_d2.config import add_ovavss_config
from ovavss_d2.data import AVSSDatasetMapper
from ovavss_d2.data.datasets import register_avsbench_semantic


@pytest.fixture(scope="module")
def cfg(fake_avsbench):
    register_avsbench_semantic(fake_avsbench.root, name_prefix="ldr_")
    cfg = get_cfg()
    add_ovavss_config(cfg)
    cfg.DATASETS.TRAIN = ("ldr_avss_all_train",)
    cfg.DATASETS.TEST = ("ldr_avss_v2_test",)
    cfg.INPUT.MIN_SIZE_TRAIN = (32, 40)
    cfg.INPUT.MAX_SIZE_TRAIN = 100
    cfg.INPUT.MIN_SIZE_TEST = 36
    cfg.INPUT.MAX_SIZE_TEST = 100
    cfg.INPUT.SAMPLING_FRAME_NUM = 3
    cfg.SOLVER.IMS_PER_BATCH = 2
    cfg.DATALOADER.NUM_WORKERS = 0
    return cfg


@pytest.mark.parametrize("workers", [0, 2])
def test_train_loader_batch_of_two(cfg, workers):
    cfg = cfg.clone()
    cfg.DATALOADER.NUM_WORKERS = workers
    loader = build_detection_train_loader(cfg, mapper=AVSSDatasetMapper(cfg, True))
    for batch in itertools.islice(loader, 3):
        assert isinstance(batch, list) and len(batch) == 2
        for d in batch:
            t, c, h, w = d["images"].shape
            assert (t, c) == (3, 3) and min(h, w) in (32, 40) and d["images"].dtype == torch.uint8
            assert d["audio"].shape == (3, 1, 96, 64)
            assert d["sem_seg"].shape == (3, h, w) and d["annotated"].shape == (3,)
            assert d["instances"].gt_masks.shape[1:] == (3, h, w)
            assert len(d["instances"]) == len(d["instances"].gt_classes)


def test_test_loader_takes_all_frames(cfg):
    loader = build_detection_test_loader(
        cfg, "ldr_avss_v2_test", mapper=AVSSDatasetMapper(cfg, False)
    )
    batches = list(loader)
    assert len(batches) == 2
    for (d,) in batches:
        assert d["images"].shape == (10, 3, 36, 48) and d["sem_seg"].shape == (10, 36, 48)
        assert (d["height"], d["width"]) == (48, 64)
