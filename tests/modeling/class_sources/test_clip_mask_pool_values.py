"""CLIP_VISUAL.MODE mask_pool against an independent computation on a tiny random ViT CLIP.

The expected dense features come from CLIP's own forward: the input of the last block is caught
with a hook during ``encode_image``, and the last block's value path is CLIP's own attention with
a mask that lets each token attend only to itself (softmax weight 1 on itself: exactly the value
path), then ``ln_post`` and ``proj``. Masks are constant on the 16 x 16 patches, so the pooled
embedding is a weighted mean of the 4 patch features with weights read off the masks.
"""

import torch
import torch.nn.functional as F

from ovavss_d2.modeling.class_sources.clip_visual import (
    CLIP_PIXEL_MEAN,
    CLIP_PIXEL_STD,
    CLIPVisualClassifier,
)
from ovavss_d2.modeling.text_encoder.clip_loader import load_clip

SCALE = 10.0


def _patch_features(model, images: torch.Tensor) -> torch.Tensor:
    """``(T, 4, E)`` value-path features of the 2 x 2 patches, patch order row-major."""
    visual = model.visual
    x = images.float() / 255.0
    x = (x - torch.tensor(CLIP_PIXEL_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_PIXEL_STD).view(
        1, 3, 1, 1
    )
    last = visual.transformer.resblocks[-1]
    caught = {}
    handle = last.register_forward_hook(lambda mod, inp, out: caught.update(x=inp[0]))
    try:
        model.encode_image(x)
    finally:
        handle.remove()
    tokens = caught["x"]  # (L = 1 + 4, T, W): the last block's input
    length = tokens.shape[0]
    only_self = torch.full((length, length), float("-inf")).fill_diagonal_(0.0)
    h = last.ln_1(tokens)
    v = last.attn(h, h, h, need_weights=False, attn_mask=only_self)[0]  # (L, T, W)
    return visual.ln_post(v[1:].permute(1, 0, 2)) @ visual.proj  # (T, 4, E)


def test_mask_pool_logits_match_independent_computation(tiny_clip_vit):
    model = load_clip(tiny_clip_vit)
    g = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (2, 3, 32, 32), generator=g, dtype=torch.uint8)
    text = F.normalize(torch.randn(3, 32, generator=g), dim=-1)
    # Mask weights per patch (top-left, top-right, bottom-left, bottom-right) of (query, frame).
    weights = torch.tensor(
        [
            [[1.0, 0.0, 0.0, 0.0], [0.9, 0.9, 0.0, 0.0]],  # query 0: present in both frames
            [[0.0, 0.0, 0.0, 0.0], [0.2, 0.6, 1.0, 0.8]],  # query 1: only in frame 1
            [[0.3, 0.3, 0.3, 0.3], [0.0, 0.0, 0.0, 0.0]],  # query 2: soft, below 0.5: absent
        ]
    )
    masks = weights.view(3, 2, 2, 2).repeat_interleave(16, 2).repeat_interleave(16, 3)

    classifier = CLIPVisualClassifier(model, "mask_pool", logit_scale=SCALE)
    logits, present = classifier(images, masks, text)

    with torch.no_grad():
        feats = _patch_features(model, images)  # (T, 4, E)
    expected = torch.zeros(3, 3)
    for q in range(3):
        frames = [t for t in range(2) if weights[q, t].max() > 0.5]
        for t in frames:
            pooled = (weights[q, t, :, None] * feats[t]).sum(0) / (weights[q, t].sum() + 1e-6)
            expected[q] += SCALE * F.normalize(pooled, dim=0) @ text.t() / len(frames)
    assert present.tolist() == [[True, True], [False, True], [False, False]]
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)
    assert logits[0].abs().sum() > 0 and torch.equal(logits[2], torch.zeros(3))
