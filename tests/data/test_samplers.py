"""ovavss_d2.data.samplers: the resumable training loader."""

import pytest


def test_train_loader_refuses_a_batch_of_zero():
    from detectron2.config import get_cfg

    from ovavss_d2.data.samplers import build_resumable_train_loader

    cfg = get_cfg()
    cfg.SOLVER.IMS_PER_BATCH = 0
    with pytest.raises(ValueError, match="SOLVER.IMS_PER_BATCH 0: must be at least 1"):
        build_resumable_train_loader(cfg, [{}], lambda d: d)


@pytest.mark.parametrize("grouping", [True, False])
@pytest.mark.parametrize(
    "model_device,cuda_visible,pinned",
    [("cpu", True, False), ("cuda", False, False), ("cuda", True, True), ("cuda:1", True, True)],
)
def test_train_loader_pins_memory_exactly_for_a_cuda_model(
    monkeypatch, grouping, model_device, cuda_visible, pinned
):
    import torch
    from detectron2.config import get_cfg

    from ovavss_d2.data.samplers import build_resumable_train_loader

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_visible)
    cfg = get_cfg()
    cfg.MODEL.DEVICE = model_device
    cfg.SOLVER.IMS_PER_BATCH = 1
    cfg.DATALOADER.ASPECT_RATIO_GROUPING = grouping
    loader, _ = build_resumable_train_loader(cfg, [{}], lambda d: d)
    torch_loader = loader.dataset if grouping else loader  # the grouping wraps the DataLoader
    assert torch_loader.pin_memory is pinned


def test_train_loader_batches_are_page_locked_on_cuda(device):
    import torch
    from detectron2.config import get_cfg

    from ovavss_d2.data.samplers import build_resumable_train_loader

    cfg = get_cfg()
    cfg.MODEL.DEVICE = device
    cfg.SOLVER.IMS_PER_BATCH = 2
    cfg.DATALOADER.NUM_WORKERS = 0
    dicts = [{"i": i} for i in range(3)]

    def mapper(d):
        return {
            "images": torch.full((2, 3, 4, 4), d["i"], dtype=torch.uint8),
            "height": 4,
            "width": 4,
        }

    loader, _ = build_resumable_train_loader(cfg, dicts, mapper)
    batch = next(iter(loader))
    assert len(batch) == 2
    assert all(x["images"].is_pinned() == (device == "cuda") for x in batch)
