"""The FPN-like decoder (TPAVIDecoder): outputs at the finest stride, bad levels rejected."""

import pytest
import torch
from detectron2.layers import ShapeSpec

from ovavss_d2.baselines.tpavi import TPAVIDecoder, pad_clip_tokens


def _shapes():
    return {
        "res2": ShapeSpec(channels=8, stride=4),
        "res3": ShapeSpec(channels=16, stride=8),
        "res4": ShapeSpec(channels=16, stride=16),
        "res5": ShapeSpec(channels=24, stride=32),
    }


def test_decoder_outputs_at_finest_stride():
    torch.manual_seed(0)
    dec = TPAVIDecoder(
        _shapes(),
        in_features=["res5", "res3", "res2", "res4"],
        tpavi_stages=["res3", "res5"],
        conv_dim=32,
        num_outputs=3,
    )
    assert dec.in_features == ["res2", "res3", "res4", "res5"] and dec.common_stride == 4
    feats = {
        k: torch.randn(4, s.channels, 64 // s.stride, 96 // s.stride) for k, s in _shapes().items()
    }
    audio, valid, clip_index = pad_clip_tokens(torch.randn(4, 32), [1, 3])
    logits, fused = dec(feats, audio, clip_index, valid)
    assert logits.shape == (4, 3, 16, 24)
    assert sorted(fused) == ["res3", "res5"] and fused["res5"].shape == (4, 32, 2, 3)


def test_decoder_rejects_bad_levels():
    with pytest.raises(ValueError, match="STAGES"):
        TPAVIDecoder(
            _shapes(),
            in_features=["res4", "res5"],
            tpavi_stages=["res3"],
            conv_dim=32,
            num_outputs=1,
        )
    with pytest.raises(ValueError, match="IN_FEATURES"):
        TPAVIDecoder(_shapes(), in_features=["res6"], tpavi_stages=[], conv_dim=32, num_outputs=1)
    shapes = dict(_shapes(), p5=ShapeSpec(channels=8, stride=32))
    with pytest.raises(ValueError, match="strides"):
        TPAVIDecoder(
            shapes, in_features=["res5", "p5"], tpavi_stages=[], conv_dim=32, num_outputs=1
        )
