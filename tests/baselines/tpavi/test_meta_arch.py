"""TPAVIAVS: forward/backward for any T and batch size, output format, clip isolation, and the
auxiliary losses (zero when their weight is zero, a different gradient when enabled)."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from detectron2.config import get_cfg
from detectron2.data import MetadataCatalog
from detectron2.layers import ShapeSpec
from detectron2.modeling import Backbone, build_model
from detectron2.structures import Instances
from torch import nn

from ovavss_d2 import add_ovavss_config
from ovavss_d2.baselines.tpavi import (
    TPAVIAVS,
    CropEncoder,
    CropHead,
    TPAVIDecoder,
    add_tpavi_config,
)

INSTANT_TEST = "configs/avsbench_object/tpavi_effnet_yamnet_synth_instant_test.yaml"
NUM_CLASSES = 4
_counter = itertools.count()


class TinyBackbone(Backbone):
    """Four strided convolutions: res2..res5 at strides 4..32."""

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList(
            [
                nn.Conv2d(3, 8, 3, 4, 1),
                nn.Conv2d(8, 8, 3, 2, 1),
                nn.Conv2d(8, 16, 3, 2, 1),
                nn.Conv2d(16, 16, 3, 2, 1),
            ]
        )

    def forward(self, x):
        out = {}
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            out[f"res{i + 2}"] = x
        return out

    def output_shape(self):
        return {
            f"res{i + 2}": ShapeSpec(channels=c.out_channels, stride=2 ** (i + 2))
            for i, c in enumerate(self.convs)
        }

    @property
    def size_divisibility(self):
        return 32


class TinyAudioEncoder(nn.Module):
    """(N, 1, L, M) -> (N, 8); frozen, like the configured encoders."""

    output_dim = 8

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 8)
        self.fc.requires_grad_(False)

    def forward(self, patches):
        return self.fc(patches.mean(dim=(1, 2)))


def tiny_model(
    task="binary", *, branch=None, avm=0.0, ce=0.0, pairwise=0.0, audio_cos=0.0, seed=0
) -> TPAVIAVS:
    """A TPAVIAVS of tiny parts; ``branch`` "separate" / "shared" adds a full crop head."""
    torch.manual_seed(seed)
    backbone = TinyBackbone()
    decoder = TPAVIDecoder(
        backbone.output_shape(),
        in_features=["res2", "res3", "res4", "res5"],
        tpavi_stages=["res3", "res4", "res5"],
        conv_dim=32,
        num_outputs=NUM_CLASSES + 1 if task == "semantic" else 1,
    )
    crop_encoder, crop_head = None, None
    if branch == "separate":  # a tiny stand-in for the ImageNet CNN (built by build_crop_encoder)
        trunk = nn.Sequential(nn.Conv2d(3, 12, 3, 4, 1), nn.ReLU())
        crop_encoder = CropEncoder(trunk, 12, [127.0] * 3, [128.0] * 3)
    if branch is not None:
        dim = crop_encoder.feature_dim if crop_encoder is not None else 16
        crop_head = CropHead(dim, 16, num_classes=NUM_CLASSES, audio_dim=32)
    model = TPAVIAVS(
        backbone=backbone,
        audio_encoder=TinyAudioEncoder(),
        decoder=decoder,
        task=task,
        num_classes=NUM_CLASSES,
        pixel_mean=[127.0] * 3,
        pixel_std=[128.0] * 3,
        avm_weight=avm,
        crop_head=crop_head,
        crop_encoder=crop_encoder,
        crop_ce_weight=ce,
        crop_pairwise_weight=pairwise,
        crop_audio_cos_weight=audio_cos,
        crop_size=32,
        crop_min_area=4,
    )
    # The TPAVI modules start as the identity; open them so that audio reaches the output.
    for m in model.decoder.tpavi.values():
        nn.init.ones_(m.out.norm.weight)
    return model


def make_clip(
    num_frames, size=(48, 64), classes=(1, 3), seed=0, binary=False, annotated=None, original=None
):
    """A mapper-style dict: one rectangle per class (label index = class id + 1) over noise."""
    g = torch.Generator().manual_seed(seed)
    h, w = size
    images = torch.randint(0, 256, (num_frames, 3, h, w), generator=g, dtype=torch.uint8)
    sem_seg = torch.zeros(num_frames, h, w, dtype=torch.long)
    for i, c in enumerate(classes):
        y, x = 4 + 20 * i + num_frames, 6 + 24 * i
        sem_seg[:, y : y + 14, x : x + 18] = 1 if binary else c + 1
    annotated = (
        torch.ones(num_frames, dtype=torch.bool) if annotated is None else torch.tensor(annotated)
    )
    sem_seg[~annotated] = 255
    present = torch.unique(sem_seg[(sem_seg > 0) & (sem_seg != 255)])
    inst = Instances((h, w))
    inst.gt_classes = present - 1
    inst.gt_masks = sem_seg[None] == present.view(-1, 1, 1, 1)
    out_h, out_w = original or size
    return {
        "images": images,
        "audio": torch.randn(num_frames, 1, 96, 64, generator=g),
        "sem_seg": sem_seg,
        "annotated": annotated,
        "instances": inst,
        "binary": binary,
        "class_names": ["cat"],
        "height": out_h,
        "width": out_w,
    }


@pytest.mark.parametrize("task", ["binary", "semantic"])
@pytest.mark.parametrize("num_frames", [1, 5])
@pytest.mark.parametrize("batch", [1, 2])
def test_forward_backward_and_inference(task, num_frames, batch):
    model = tiny_model(task, avm=0.5)
    clips = [make_clip(num_frames, seed=b) for b in range(batch)]
    model.train()
    losses = model(clips)
    assert set(losses) == {"loss_mask", "loss_avm"}
    assert all(torch.isfinite(v) and v.item() > 0 for v in losses.values())
    sum(losses.values()).backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert (
        grads["audio_proj.weight"].abs().sum() > 0
        and grads["backbone.convs.0.weight"].abs().sum() > 0
    )

    model.eval()
    with torch.no_grad():
        out = model([make_clip(num_frames, seed=b, original=(96, 120)) for b in range(batch)])
    channels = 2 if task == "binary" else NUM_CLASSES + 1
    assert len(out) == batch and all(len(frames) == num_frames for frames in out)
    for frames in out:
        for f in frames:
            assert f["sem_seg"].shape == (channels, 96, 120)
            torch.testing.assert_close(f["sem_seg"].sum(0), torch.ones(96, 120))
            assert f["sem_seg"].min() >= 0


def test_clips_of_a_batch_do_not_interact():
    model = tiny_model().eval()
    a, b = make_clip(5, seed=1), make_clip(3, seed=2)
    with torch.no_grad():
        together = model([a, b])
        alone = model([a])
        b2 = dict(b, audio=b["audio"] + 3.0)
        changed = model([a, b2])
    for t in range(5):
        torch.testing.assert_close(
            together[0][t]["sem_seg"], alone[0][t]["sem_seg"], rtol=1e-4, atol=1e-5
        )
        torch.testing.assert_close(
            changed[0][t]["sem_seg"], alone[0][t]["sem_seg"], rtol=1e-4, atol=1e-5
        )
    assert not torch.allclose(changed[1][0]["sem_seg"], together[1][0]["sem_seg"])


def test_audio_changes_the_prediction():
    model = tiny_model().eval()
    clip = make_clip(2)
    with torch.no_grad():
        p1 = model([clip])[0][0]["sem_seg"]
        p2 = model([dict(clip, audio=torch.randn(2, 1, 96, 64))])[0][0]["sem_seg"]
    assert not torch.allclose(p1, p2)


def test_frames_of_different_sizes_in_one_batch():
    model = tiny_model().train()
    clips = [make_clip(2, size=(48, 64)), make_clip(3, size=(64, 40), seed=3)]
    losses = model(clips)
    assert torch.isfinite(losses["loss_mask"])
    model.eval()
    with torch.no_grad():
        out = model(clips)
    assert out[0][0]["sem_seg"].shape == (2, 48, 64) and out[1][2]["sem_seg"].shape == (2, 64, 40)


def test_unlabelled_batch_and_ignored_frames():
    model = tiny_model("semantic").train()
    clip = make_clip(3, annotated=[False, False, False])
    loss = model([clip])["loss_mask"]
    assert loss.item() == 0.0 and loss.requires_grad


@pytest.mark.parametrize("task", ["semantic", "binary"])
def test_segmentation_loss_counts_only_labelled_pixels(task):
    """Hand-computed loss of 2 frames of 1x2 pixels; 255 (unlabelled) pixels add nothing."""
    model = tiny_model(task)
    model.size_divisibility = 0
    sem_seg = torch.tensor([[[2, 255]], [[255, 0]]])  # (T=2, 1, 2): one labelled pixel per frame
    inputs = [{"sem_seg": sem_seg, "binary": False}]
    if task == "semantic":
        # logits (N=2, K+1=5, 1, 2) of the two labelled pixels: class 2 of frame 0, 0 of frame 1
        logits = torch.zeros(2, NUM_CLASSES + 1, 1, 2)
        logits[0, 2, 0, 0] = math.log(3.0)  # p(2) = 3 / (3 + K) at pixel (0, 0) of frame 0
        logits[1, 0, 0, 1] = math.log(5.0)  # p(0) = 5 / (5 + K) at pixel (0, 1) of frame 1
        logits[0, 0, 0, 1] = logits[1, 3, 0, 0] = 7.0  # unlabelled pixels: never counted
        k = NUM_CLASSES
        expected = -(math.log(3 / (3 + k)) + math.log(5 / (5 + k))) / 2
    else:
        logits = torch.tensor([[[[math.log(3.0), 2.0]]], [[[-1.0, math.log(0.25)]]]])
        # label 2 is sounding: -log sigmoid(log 3) = -log(3/4); 0 is silent: -log(1 - 1/5)
        expected = -(math.log(0.75) + math.log(0.8)) / 2
    loss = model._segmentation_loss(logits, inputs)
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_binary_task_collapses_semantic_labels():
    model = tiny_model("binary").train()
    semantic, binary = make_clip(2), make_clip(2, binary=True)
    torch.testing.assert_close(model([semantic])["loss_mask"], model([binary])["loss_mask"])
    with pytest.raises(ValueError, match="binary dataset"):
        tiny_model("semantic").train()([binary])


# Which parameters each auxiliary loss must reach (a prefix of their names).
AUX_LOSSES = {
    # name: (constructor weight, loss key, branch, parameter prefix whose gradient must change)
    "avm": ("avm", "loss_avm", None, "audio_proj."),
    "crop_ce_separate": ("ce", "loss_crop_ce", "separate", "crop_encoder."),
    "crop_ce_shared": ("ce", "loss_crop_ce", "shared", "backbone."),
    "crop_pairwise_separate": ("pairwise", "loss_crop_pairwise", "separate", "crop_encoder."),
    "crop_pairwise_shared": ("pairwise", "loss_crop_pairwise", "shared", "backbone."),
    "crop_audio_cos": ("audio_cos", "loss_crop_audio_cos", "separate", "audio_proj."),
}
WEIGHT_ATTR = {
    "avm": "avm_weight",
    "ce": "crop_ce_weight",
    "pairwise": "crop_pairwise_weight",
    "audio_cos": "crop_audio_cos_weight",
}


def _grads(model, clips):
    model.zero_grad(set_to_none=True)
    losses = model(clips)
    sum(losses.values()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return losses, grads


@pytest.mark.parametrize("name", sorted(AUX_LOSSES))
def test_auxiliary_loss_weight(name):
    weight, key, branch, prefix = AUX_LOSSES[name]
    model = tiny_model(branch=branch, **{weight: 1.0}).train()
    clips = [make_clip(3, seed=0), make_clip(2, classes=(2,), seed=1)]

    _, enabled_grads = _grads(model, clips)
    enabled, _ = _grads(model, clips)
    assert key in enabled and enabled[key].item() > 0

    setattr(model, WEIGHT_ATTR[weight], 0.0)  # weight zero: the loss is not there at all
    disabled, disabled_grads = _grads(model, clips)
    assert set(disabled) == {"loss_mask"}
    torch.testing.assert_close(disabled["loss_mask"], enabled["loss_mask"])

    baseline = tiny_model(branch=branch).train()  # same seed and parameters, no auxiliary loss
    baseline_losses, baseline_grads = _grads(baseline, clips)
    assert set(baseline_losses) == {"loss_mask"}
    for n, g in baseline_grads.items():
        torch.testing.assert_close(disabled_grads[n], g)

    changed = [
        n
        for n, g in enabled_grads.items()
        if n.startswith(prefix)
        and (n not in disabled_grads or not torch.allclose(g, disabled_grads[n]))
    ]
    assert changed, f"{key} did not change the gradient of any {prefix}* parameter"


def test_crop_ce_uses_object_classes():
    model = tiny_model(branch="shared", ce=1.0).train()
    captured = {}
    original = model.crop_head.forward

    def spy(features):
        out = original(features)
        captured["logits"] = out["logits"]
        return out

    model.crop_head.forward = spy
    clip = make_clip(2, classes=(1, 3))
    loss = model([clip])["loss_crop_ce"]
    # 2 objects x 2 frames: classes 1 and 3 (the mapper's 0-based gt_classes)
    labels = clip["instances"].gt_classes.repeat_interleave(2)
    torch.testing.assert_close(loss, F.cross_entropy(captured["logits"], labels))


def _meta_dataset(class_list: str) -> str:
    name = f"_tpavi_test_meta_{next(_counter)}"
    MetadataCatalog.get(name).set(
        class_list_file=class_list,
        ignore_label=255,
        evaluator_type="avs_binary",
        stuff_classes=["background", "sounding"],
    )
    return name


def tiny_cfg(repo_root):
    cfg = get_cfg()
    add_ovavss_config(cfg)
    add_tpavi_config(cfg)
    cfg.merge_from_file(str(repo_root / INSTANT_TEST))
    cfg.DATASETS.TRAIN = (_meta_dataset("avss_synth.txt"),)
    cfg.MODEL.EFFICIENTNET.WEIGHTS = "none"
    cfg.MODEL.TPAVI.CROP_LOSS.CNN_WEIGHTS = "none"
    return cfg


def test_build_from_config(repo_root):
    cfg = tiny_cfg(repo_root)
    model = build_model(cfg)
    assert isinstance(model, TPAVIAVS)
    assert model.crop_head.classifier.out_features == 22  # avss_synth.txt without background
    assert model.crop_class_ids["dog"] == 4 and model.crop_encoder is not None
    clip = make_clip(2, size=(64, 64), classes=(4, 15))
    model.train()
    losses = model([clip])
    assert set(losses) == {
        "loss_mask",
        "loss_avm",
        "loss_crop_ce",
        "loss_crop_pairwise",
        "loss_crop_audio_cos",
    }
    sum(losses.values()).backward()
    model.eval()
    with torch.no_grad():
        out = model([clip])
    assert out[0][1]["sem_seg"].shape == (2, 64, 64)


def test_config_errors(repo_root):
    cfg = tiny_cfg(repo_root)
    cfg.MODEL.TPAVI.CROP_LOSS.BRANCH = "both"
    with pytest.raises(ValueError, match="BRANCH"):
        build_model(cfg)
    cfg = tiny_cfg(repo_root)
    cfg.MODEL.TPAVI.TASK = "instance"
    with pytest.raises(ValueError, match="TASK"):
        build_model(cfg)
    cfg = tiny_cfg(repo_root)
    cfg.DATASETS.TRAIN = ()
    with pytest.raises(ValueError, match="NUM_CLASSES"):
        build_model(cfg)  # crop CE without a class list or CROP_LOSS.NUM_CLASSES


def test_semantic_model_vocabulary(repo_root):
    cfg = tiny_cfg(repo_root)
    cfg.MODEL.TPAVI.TASK = "semantic"
    cfg.MODEL.TPAVI.CROP_LOSS.CE_WEIGHT = 0.0
    model = build_model(cfg)
    assert model.num_classes == 22  # from the training dataset's class list
    model.set_vocabulary([f"c{i}" for i in range(22)])
    with pytest.raises(ValueError, match="closed-set"):
        model.set_vocabulary(["dog", "cat"])
    tiny_model("binary").set_vocabulary(["anything"])


def test_crop_losses_leave_the_initialisation_unchanged(repo_root):
    """Same seed, with and without crop losses: every shared parameter starts the same (so the
    with/without comparison in docs/RESULTS.md differs only by the losses)."""
    cfg = tiny_cfg(repo_root)
    torch.manual_seed(0)
    with_crops = build_model(cfg).state_dict()
    c = cfg.MODEL.TPAVI.CROP_LOSS
    c.CE_WEIGHT = c.PAIRWISE_WEIGHT = c.AUDIO_COS_WEIGHT = 0.0
    torch.manual_seed(0)
    without = build_model(cfg).state_dict()
    assert not any(k.startswith("crop_") for k in without)
    for k, v in without.items():
        assert torch.equal(with_crops[k], v), k


def test_end_to_end_with_mapper_and_binary_evaluator(repo_root, tmp_path):
    """Fake AVSBench clips -> AVSSDatasetMapper -> TPAVIAVS (train step with every loss, then
    inference) -> AVSBinaryEvaluator: the interfaces of docs/DESIGN.md fit together."""
    from detectron2.data import DatasetCatalog

    from ovavss_d2.data import build_dataset_mapper
    from ovavss_d2.data.datasets import register_avsbench_dataset
    from ovavss_d2.evaluation import build_evaluator
    from ovavss_d2.utils.testing import make_fake_avsbench

    fake = make_fake_avsbench(tmp_path / "AVSBench-semantic", subsets=("v1m",), size=(48, 64))
    prefix = f"_tpavi_e2e_{next(_counter)}_"
    register_avsbench_dataset(prefix + "train", fake.root, subsets=("v1m",), splits=("train",))
    register_avsbench_dataset(
        prefix + "test", fake.root, subsets=("v1m",), splits=("test",), split_file=None, binary=True
    )
    cfg = tiny_cfg(repo_root)
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = (prefix + "train",), (prefix + "test",)
    cfg.MODEL.TPAVI.CROP_LOSS.MAX_CROPS = 0
    model = build_model(cfg)
    assert model.crop_head.classifier.out_features == 70  # avsbench_semantic.txt

    train_clip = build_dataset_mapper(cfg, is_train=True)(DatasetCatalog.get(prefix + "train")[0])
    model.train()
    losses = model([train_clip])
    assert len(losses) == 5 and all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_crop_pairwise"].item() > 0  # v1m: every frame labelled -> pairs

    test_clips = [
        build_dataset_mapper(cfg, is_train=False)(d) for d in DatasetCatalog.get(prefix + "test")
    ]
    evaluator = build_evaluator(cfg, prefix + "test")
    evaluator.reset()
    model.eval()
    with torch.no_grad():
        outputs = model(test_clips)
    evaluator.process(test_clips, outputs)
    metrics = evaluator.evaluate()["avs_binary"]
    # Mj recomputed from the model's outputs and the label files: mean per-frame Jaccard of the
    # sounding pixels (1 for a frame whose prediction and ground truth are both empty)
    from ovavss_d2.data.labels import read_label_map

    jaccards = []
    for clip, frames in zip(test_clips, outputs):
        for t, frame in zip(clip["frame_indices"], frames):
            if clip["sem_seg_file_names"][t] is None:
                continue
            gt = read_label_map(clip["sem_seg_file_names"][t], 71) > 0
            pred = (frame["sem_seg"].argmax(0) != 0).numpy()
            union = (gt | pred).sum()
            jaccards.append((gt & pred).sum() / union if union else 1.0)
    assert len(jaccards) == len(test_clips) * 5
    assert metrics["Mj"] == pytest.approx(100 * sum(jaccards) / len(jaccards))
