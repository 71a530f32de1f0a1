"""OVAVSS inference against hand-computed values: fixed decoder outputs for 2 queries x 2 frames.

``model._decode`` is replaced by hand-made outputs, the text embeddings by unit vectors and the
learned classifier's projection by the identity on 4 dimensions, so every number of the
documented rule can be computed here with ``math``: logits = scale * cosine, the base-logit
penalty, ``p_fg = p_obj ** a * (1 - p_bg) ** b``, top-k (query, class) pairs, masks at the input
size with the padding cut off, and the semantic map of ``semantic_from_masks`` (docstring of
ovavss_d2/modeling/meta_arch/postprocessing.py) or of painted instances.
"""

import math

import pytest
import torch
from detectron2.modeling import build_model
from ovavss_model_helpers import tiny_cfg
from torch import nn

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
def model(repo_root):
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


def run(model):
    clip = {
        "images": torch.zeros(2, 3, H, W, dtype=torch.uint8),
        "audio": torch.zeros(2, 1, 96, 64),
        "height": H,
        "width": W,
    }
    with torch.no_grad():
        return model([clip])[0]


def test_instances_are_the_top_k_query_class_pairs(model):
    frames = run(model)
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


def test_semantic_map_from_masks(model):
    """Channel 0 = 1 - max_q p_fg(q) m_q; channel k = fg * s_k / max_k s_k, s_k = sum_q
    score(q, k) m_q; in each quadrant of each frame."""
    frames = run(model)
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


def test_semantic_map_painted_from_instances(model):
    """SEMANTIC_FROM instances: each kept instance paints its score into its class channel (the
    higher score wins), background is 1 where nothing is painted."""
    model.semantic_from = "instances"
    try:
        frames = run(model)
    finally:
        model.semantic_from = "masks"
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
