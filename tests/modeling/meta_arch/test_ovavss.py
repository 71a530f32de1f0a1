"""OVAVSS meta-architecture: training forward/backward, inference outputs, vocabulary switching,
errors, overfitting one clip, the CLIP path and checkpoints."""

import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model
from ovavss_model_helpers import BASE_IDS, CLASSES, make_clip, tiny_cfg

from ovavss_d2.modeling.class_sources import SourceWeights


@pytest.fixture(scope="module")
def model(repo_root):
    torch.manual_seed(0)
    return build_model(tiny_cfg(repo_root))


@pytest.mark.parametrize("num_frames", [1, 5, 10])
@pytest.mark.parametrize("batch", [1, 2])
def test_train_forward_backward(model, num_frames, batch):
    clips = [make_clip(num_frames, classes=(0, 1), seed=1)]
    if batch == 2:  # an empty clip (no sounding object) with only its first frame annotated
        ann = [True] + [False] * (num_frames - 1)
        clips.append(make_clip(num_frames, size=(56, 72), classes=(), annotated=ann, seed=2))
    model.train()
    model.zero_grad()
    losses = model(clips)
    assert {"loss_objectness", "loss_class", "loss_mask", "loss_dice", "loss_dice_1"} <= set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for n, p in model.named_parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads[-20:])
    assert model.embedding_classifier.bg_embed.grad is not None
    assert not any(p.requires_grad for p in model.audio_encoder.parameters())


def test_inference_outputs(model):
    model.eval()
    clip = make_clip(3, size=(64, 80), original_size=(120, 150), seed=3)
    # the instant-test config inherits the default's sources: YAMNet's sound and ImageNet tags
    assert list(model.class_sources) == ["learned", "audio_tags", "image_tags"]
    with torch.no_grad():
        out = model([clip])
    assert len(out) == 1 and len(out[0]) == 3
    k = len(CLASSES) - 1
    for frame in out[0]:
        assert frame["sem_seg"].shape == (k + 1, 120, 150)
        assert torch.isfinite(frame["sem_seg"]).all()
        inst = frame["instances"]
        assert inst.image_size == (120, 150)
        assert inst.pred_masks.shape[1:] == (120, 150) and inst.pred_masks.dtype == torch.bool
        assert len(inst.scores) == len(inst.pred_classes) == len(inst.pred_masks) <= model.top_k
        if len(inst):
            assert inst.pred_classes.max() < k


def test_vocabulary_swap_changes_channels_and_names(model):
    model.eval()
    clip = make_clip(2, seed=4)
    calls = []
    encode = model.text_encoder.encode
    model.text_encoder.encode = lambda texts: calls.append(len(texts)) or encode(texts)
    try:
        model.set_vocabulary(["dog", ("grand piano", "piano"), "emergency-car"])
        assert model.class_names == ["dog", "grand piano", "emergency-car"]
        with torch.no_grad():
            out = model([clip])
        assert out[0][0]["sem_seg"].shape[0] == 4
        n_calls = len(calls)
        assert n_calls >= 1
        model.set_vocabulary(["cat", "dog"])
        with torch.no_grad():
            out = model([clip])
        assert out[0][0]["sem_seg"].shape[0] == 3 and model.class_names == ["cat", "dog"]
        # Switching back reuses the cached text embeddings.
        before = len(calls)
        model.set_vocabulary(["dog", ("grand piano", "piano"), "emergency-car"])
        with torch.no_grad():
            model([clip])
        assert len(calls) == before
    finally:
        model.text_encoder.encode = encode
        model.set_vocabulary(CLASSES[1:])


def test_base_classes_known_by_name(model):
    base = model._base_mask([("Dog",), ("tiger",), ("violin",)])
    assert base.tolist() == [True, False, True]
    assert model.train_keys == [CLASSES[i] for i in BASE_IDS]


def test_errors(model):
    model.train()
    with pytest.raises(ValueError, match="same number of frames"):
        model([make_clip(2), make_clip(3)])
    with pytest.raises(ValueError, match="not in the training vocabulary"):
        model([make_clip(2, classes=(2,))])  # cello (label 3) is novel
    with pytest.raises(ValueError, match="vocabulary is empty"):
        model.set_vocabulary([])


def test_overfits_one_clip(repo_root):
    torch.manual_seed(0)
    cfg = tiny_cfg(repo_root)
    net = build_model(cfg)
    net.train()
    clip = make_clip(1, size=(64, 64), classes=(0, 3), seed=5)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    history = []
    for _ in range(50):
        losses = net([clip])
        total = sum(losses.values())
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append(total.item())
    first, last = sum(history[:3]) / 3, sum(history[-3:]) / 3
    assert last < 0.4 * first, f"loss {first:.2f} -> {last:.2f}"


def test_checkpoint_roundtrip(repo_root, tmp_path):
    cfg = tiny_cfg(repo_root, **{"MODEL.OVAVSS.CHECKPOINT_FROZEN_AUDIO_ENCODER": False})
    torch.manual_seed(1)
    a = build_model(cfg).eval()
    keys = a.state_dict().keys()
    assert keys and not any(k.startswith("audio_encoder.") for k in keys)
    DetectionCheckpointer(a, save_dir=str(tmp_path)).save("tiny")
    torch.manual_seed(2)
    b = build_model(cfg).eval()
    result = DetectionCheckpointer(b).load(str(tmp_path / "tiny.pth"))
    assert result is not None
    clip = make_clip(2, seed=6)
    with torch.no_grad():
        out_a, out_b = a([clip]), b([clip])
    torch.testing.assert_close(out_a[0][1]["sem_seg"], out_b[0][1]["sem_seg"])
    # load_state_dict(strict=True) works: the frozen encoder is filled from the model itself.
    b.load_state_dict(a.state_dict(), strict=True)


def test_checkpoint_keeps_frozen_audio_when_asked(model):
    saved = model.checkpoint_frozen_audio
    model.checkpoint_frozen_audio = True  # the config default (MODEL.OVAVSS.CHECKPOINT_FROZEN_...)
    try:
        assert any(k.startswith("audio_encoder.") for k in model.state_dict())
    finally:
        model.checkpoint_frozen_audio = saved


@pytest.mark.parametrize("mode", ["crop", "mask_pool"])
def test_clip_visual_path(repo_root, tmp_path, mode):
    from clip.model import CLIP

    torch.manual_seed(0)
    path = tmp_path / "tiny_clip.pt"
    torch.save(CLIP(32, 32, 2, 64, 16, 77, 49408, 64, 1, 1).state_dict(), path)
    cfg = tiny_cfg(
        repo_root,
        **{
            "MODEL.TEXT_ENCODER.NAME": "CLIPTextEncoder",
            "MODEL.TEXT_ENCODER.CLIP_MODEL": str(path),
            "MODEL.CLASS_SOURCES.CLIP_VISUAL.MODE": mode,
            "MODEL.OVAVSS.TEST.SCORE_THRESHOLD": 0.0,
            "MODEL.CLASS_SOURCES.NAMES": ["learned", "clip_visual", "audio_tags"],
            "MODEL.CLASS_SOURCES.BASE_WEIGHTS": [0.48, 0.32, 0.2],
            "MODEL.CLASS_SOURCES.NOVEL_WEIGHTS": [0.1, 0.4, 0.5],
        },
    )
    net = build_model(cfg)
    assert net.clip_visual is not None
    assert net.embedding_classifier.embed_dim == 32
    net.train()
    losses = net([make_clip(2, classes=(0,), seed=7)])
    sum(losses.values()).backward()
    net.eval()
    with torch.no_grad():
        out = net([make_clip(2, seed=8)])
    assert out[0][0]["sem_seg"].shape[0] == len(CLASSES)
    assert len(out[0][0]["instances"]) == net.top_k
    assert list(net.class_sources) == ["learned", "clip_visual", "audio_tags"]
    # The reference's pipeline: CLIP only, objectness ignored, instances painted.
    net.source_weights = {name: SourceWeights(0, 0) for name in net.class_sources}
    net.source_weights["clip_visual"] = SourceWeights(1, 1)
    net.objectness_exponent = net.background_exponent = 0.0
    net.semantic_from = "instances"
    net.score_threshold = 0.3
    with torch.no_grad():
        ref = net([make_clip(2, seed=8)])
    sem = ref[0][0]["sem_seg"]
    painted = (sem[1:] > 0).any(0)
    assert torch.equal(sem[0] == 1, ~painted)


def test_reference_semantic_painting():
    from detectron2.structures import Instances

    from ovavss_d2.modeling.meta_arch.postprocessing import paint_instances

    inst = Instances((2, 3))
    inst.pred_masks = torch.tensor(
        [[[1, 1, 0], [0, 0, 0]], [[0, 1, 1], [0, 0, 0]]], dtype=torch.bool
    )
    inst.scores = torch.tensor([0.9, 0.5])
    inst.pred_classes = torch.tensor([0, 2])
    labels = paint_instances(inst, 3).argmax(0)
    # Higher score wins the overlap at (0, 1); row 1 is background.
    assert labels.tolist() == [[1, 1, 3], [0, 0, 0]]


def test_semantic_from_masks_hand_computed():
    from ovavss_d2.modeling.meta_arch.postprocessing import semantic_from_masks

    # Query 0: p_fg 0.9, class 0 vs 1 = 2:1; query 1: p_fg 0.2 on class 1. Pixels: (a) only q0,
    # (b) only q1, (c) both at mask probability 0.5.
    scores = torch.tensor([[0.6, 0.3], [0.0, 0.2]])
    masks = torch.tensor([[[1.0, 0.0, 0.5]], [[0.0, 1.0, 0.5]]])  # (Q=2, H=1, W=3)
    sem = semantic_from_masks(scores, masks)
    fg = torch.tensor([0.9, 0.2, 0.45])
    torch.testing.assert_close(sem[0, 0], 1 - fg)
    # Pixel a: evidence (0.6, 0.3) -> best class channel carries fg.
    torch.testing.assert_close(sem[1:, 0, 0], torch.tensor([0.9, 0.45]))
    # Pixel c: evidence (0.3, 0.25): class 0 wins, but fg 0.45 < 0.5 -> background.
    assert sem[:, 0, 2].argmax() == 0
    assert sem[:, 0, 0].argmax() == 1 and sem[:, 0, 1].argmax() == 0


def test_base_logit_penalty_moves_mass_to_novel(model):
    model.eval()
    clip = make_clip(2, seed=9)
    model.set_vocabulary(CLASSES[1:])
    learned = model.class_sources["learned"]
    saved = learned.base_logit_penalty
    try:
        learned.base_logit_penalty = 0.0
        plain = model.query_scores(model.class_evidence([clip])[0])
        learned.base_logit_penalty = 5.0
        penalised = model.query_scores(model.class_evidence([clip])[0])
    finally:
        learned.base_logit_penalty = saved
    novel = ~model._base_mask([(c,) for c in CLASSES[1:]])
    assert (penalised[:, novel].sum(-1) > plain[:, novel].sum(-1)).all()
    # The foreground probability (row sums) does not change.
    torch.testing.assert_close(penalised.sum(-1), plain.sum(-1))


def test_cached_evidence_reproduces_forward(model):
    """forward in eval mode == postprocess(class_evidence): evidence cached once can be re-combined
    offline with other source weights."""
    model.eval()
    clips = [make_clip(3, seed=11, original_size=(70, 90)), make_clip(3, seed=12)]
    model.set_vocabulary(CLASSES[1:])
    with torch.no_grad():
        out = model(clips)
    records = model.class_evidence(clips)
    assert len(records) == 2
    for record, clip_out in zip(records, out):
        assert (
            set(record["evidence"])
            == set(model.class_sources)
            == {
                "learned",
                "audio_tags",
                "image_tags",
            }
        )
        q = record["p_fg"].shape[0]
        assert record["mask_logits"].shape[:2] == (q, 3)
        assert record["is_base"].tolist() == [c in (1, 2, 4) for c in range(1, len(CLASSES))]
        assert record["image_size"] == (64, 80)
        again = model.postprocess(record)
        for a, b in zip(again, clip_out):
            torch.testing.assert_close(a["sem_seg"], b["sem_seg"], rtol=0, atol=0)
            assert torch.equal(a["instances"].pred_masks, b["instances"].pred_masks)
            torch.testing.assert_close(a["instances"].scores, b["instances"].scores)
    assert records[0]["output_size"] == (70, 90) and records[1]["output_size"] == (64, 80)
