"""ovavss_d2.data.samplers: the resumable training loader."""

import pytest


def test_train_loader_refuses_a_batch_of_zero():
    from detectron2.config import get_cfg

    from ovavss_d2.data.samplers import build_resumable_train_loader

    cfg = get_cfg()
    cfg.SOLVER.IMS_PER_BATCH = 0
    with pytest.raises(ValueError, match="SOLVER.IMS_PER_BATCH 0: must be at least 1"):
        build_resumable_train_loader(cfg, [{}], lambda d: d)
