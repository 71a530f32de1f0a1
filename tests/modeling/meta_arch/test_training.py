"""meta_arch/training.py: criterion targets checked and mapped on the host, then copied without
blocking; the host-device synchronisations of one training step of the tiny model."""

import pytest
import torch
from detectron2.data import MetadataCatalog
from detectron2.modeling import build_model
from detectron2.structures import Instances
from ovavss_model_helpers import make_clip, tiny_cfg

from ovavss_d2.data.vocabulary import UNNAMED
from ovavss_d2.modeling.criterion import UNNAMED_LABEL
from ovavss_d2.modeling.meta_arch.training import prepare_targets
from ovavss_d2.utils.host_syncs import HostSyncCounter

DATASET_TO_TRAIN = torch.tensor([0, 1, -1, 2, -1])  # dataset classes 2 and 4 are novel


def _clip(classes, size, annotated=(True, True, True), clip_id="c"):
    h, w = size
    inst = Instances(size)
    inst.gt_classes = torch.tensor(classes, dtype=torch.int64)
    inst.gt_masks = torch.rand(len(classes), 3, h, w, generator=torch.Generator().manual_seed(h))
    inst.gt_masks = inst.gt_masks > 0.5
    return {"clip_id": clip_id, "instances": inst, "annotated": torch.tensor(annotated)}


def _prepare(clips, device, padded=(8, 12), dataset_to_train=DATASET_TO_TRAIN):
    return prepare_targets(
        clips, dataset_to_train, ["a", "b", "c"], padded, 3, torch.device(device)
    )


def test_targets_mapped_padded_and_placed(device):
    clips = [_clip([3, 0], (8, 10)), _clip([], (6, 12), annotated=(False, True, False))]
    del clips[0]["annotated"]  # all frames annotated when the mapper gives no mask
    targets = _prepare(clips, device)
    first, second = targets
    assert first["labels"].tolist() == [2, 0] and second["labels"].tolist() == []
    assert first["frames"].tolist() == [0, 1, 2] and second["frames"].tolist() == [1]
    assert first["annotated"].tolist() == [True] * 3
    assert second["annotated"].tolist() == [False, True, False]
    for t, clip in zip(targets, clips):
        masks = clip["instances"].gt_masks
        h, w = masks.shape[-2:]
        assert t["masks"].shape == (len(masks), 3, 8, 12) and t["masks"].dtype == torch.bool
        assert torch.equal(t["masks"][..., :h, :w].cpu(), masks)
        assert not t["masks"][..., h:, :].any() and not t["masks"][..., w:].any()
        assert {t[k].device.type for k in ("labels", "masks", "frames")} == {device}
        assert t["annotated"].device.type == "cpu"  # the host decides which frames count


@pytest.mark.parametrize(
    "classes,message",
    [
        (
            [5],
            r"^clip bad: class ids \[5\] outside the class list of DATASETS.TRAIN \(5 classes\)$",
        ),
        ([-1], r"^clip bad: class ids \[-1\] outside"),
        ([0, 4, 2, 4], r"^clip bad: dataset classes \[2, 4\] \(0-based\) are not in the training"),
    ],
)
def test_targets_checked_on_the_host(classes, message):
    with pytest.raises(ValueError, match=message):
        _prepare([_clip([0], (8, 8)), _clip(classes, (8, 8), clip_id="bad")], "cpu")


def test_mask_shape_checked():
    clip = _clip([0], (8, 8))
    clip["instances"].gt_masks = clip["instances"].gt_masks[:, :2]
    with pytest.raises(
        ValueError, match=r"^gt_masks must be \(N, T=3, H, W\), got \(1, 2, 8, 8\)$"
    ):
        _prepare([clip], "cpu")


def test_targets_made_without_a_sync(device):
    clips = [_clip([3, 0], (8, 10)), _clip([1], (6, 12), annotated=(False, True, False))]
    counter = HostSyncCounter(torch.device(device))
    counter.mark_host([clips, DATASET_TO_TRAIN])
    with counter:
        _prepare(clips, device)
    assert dict(counter.counts) == {}, counter.sites


# Dataset class 1 is unnamed foreground (a pool class with TRAIN_POOL_NAMES False).
WITH_UNNAMED = torch.tensor([0, UNNAMED, -1, 1, -1])


def test_unnamed_classes_become_label_minus_one_without_a_sync(device):
    clips = [_clip([1, 3, 0], (8, 10)), _clip([1], (6, 12))]
    counter = HostSyncCounter(torch.device(device))
    counter.mark_host([clips, WITH_UNNAMED])
    with counter:
        targets = _prepare(clips, device, dataset_to_train=WITH_UNNAMED)
    assert dict(counter.counts) == {}, counter.sites
    assert [t["labels"].tolist() for t in targets] == [[UNNAMED_LABEL, 1, 0], [UNNAMED_LABEL]]
    assert UNNAMED_LABEL == -1 and WITH_UNNAMED[1] != UNNAMED_LABEL  # the map's own value
    with pytest.raises(ValueError, match=r"dataset classes \[2\] \(0-based\) are not in"):
        _prepare([_clip([1, 2], (8, 8))], "cpu", dataset_to_train=WITH_UNNAMED)


@pytest.mark.parametrize("per_frame", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
def test_training_step_syncs(repo_root, device, batch, per_frame):
    """Syncs of one training step (forward, losses, backward) of the tiny model, B clips of T=3,
    once the training vocabulary's text embeddings are cached (they are after the first step).

    Bound: one download of the matching costs per matched decoder layer (L = DEC_LAYERS + 1 with
    deep supervision: the main output and every aux output), whatever B; plus at most one
    blocking upload per deformable-attention layer of the pixel decoder (E =
    PIXEL_DECODER.NUM_ENCODER_LAYERS: the per-level size normaliser that
    ``pixel_decoder/msdeform_attn.py`` builds with ``torch.tensor(..., device=...)``). Nothing in
    target preparation, the criterion or the input batching waits for the device.

    Before issue 19 the same step (L = 3, E = 1) counted 27 (B = 1), 50 (B = 2), 62 (B = 3):
    L * B cost downloads, 1 + 2 B ``bool()`` checks of device class ids, one ``.item()`` of the
    mask count, and blocking uploads of every frame, of the annotated-frame indices per clip in
    the matcher and in the mask loss, and of the matched indices per loss.

    The per-frame sounding head, its loss and its matching cost (issue 17) add none.
    """
    overrides = {"MODEL.DEVICE": device, "MODEL.OVAVSS.PER_FRAME_OBJECTNESS": per_frame}
    if per_frame:
        overrides["MODEL.OVAVSS.FRAME_OBJECTNESS_COST"] = 1.0
    cfg = tiny_cfg(repo_root, **overrides)
    torch.manual_seed(0)
    model = build_model(cfg)
    model.train()
    clips = [
        make_clip(3, classes=(0, 1), seed=1),
        make_clip(3, size=(56, 72), classes=(3,), annotated=[True, False, True], seed=2),
        make_clip(3, size=(40, 90), classes=(), seed=3),
    ][:batch]
    layers = cfg.MODEL.TRANSFORMER_DECODER.DEC_LAYERS + 1
    deformable = cfg.MODEL.PIXEL_DECODER.NUM_ENCODER_LAYERS
    assert model.deep_supervision and layers == 3
    model.text_classifier.get(model.train_prompts)  # cached by the first step of a run
    counter = HostSyncCounter(torch.device(device))
    counter.mark_host([clips, model.dataset_to_train])  # the mapper's batch and the class map
    with counter:
        losses = model(clips)
        sum(losses.values()).backward()
    assert ("loss_frame_objectness" in losses) == per_frame
    sites = "\n".join(map(str, counter.sites))
    assert counter.counts["Tensor.cpu"] == layers, sites
    assert counter.total <= layers + deformable, sites


def test_training_step_with_unnamed_pool_objects(repo_root, device):
    """TRAIN_POOL_NAMES False: the pool class (lion) leaves the classifier's vocabulary and its
    objects train objectness and masks only; a clip of unnamed objects alone gives finite losses,
    with the syncs of a step without them."""
    cfg = tiny_cfg(repo_root, **{"MODEL.DEVICE": device})
    cfg.MODEL.OVAVSS.TRAIN_POOL_NAMES = False
    MetadataCatalog.get(cfg.DATASETS.TRAIN[0]).set(pool_ids=[4])  # lion, 0-based class 3
    torch.manual_seed(0)
    model = build_model(cfg)
    model.train()
    assert model.train_keys == ["dog", "violin"] and model.criterion.num_classes == 2
    assert model.dataset_to_train.tolist() == [0, 1, -1, UNNAMED, -1]
    clips = [make_clip(3, classes=(3,), seed=1), make_clip(3, classes=(0, 3), seed=2)]
    model.text_classifier.get(model.train_prompts)
    for batch in ([clips[0]], clips):
        counter = HostSyncCounter(torch.device(device))
        counter.mark_host([batch, model.dataset_to_train])
        with counter:
            losses = model(batch)
            sum(losses.values()).backward()
        assert all(torch.isfinite(v) for v in losses.values()), losses
        assert counter.counts["Tensor.cpu"] == cfg.MODEL.TRANSFORMER_DECODER.DEC_LAYERS + 1
        model.zero_grad()
