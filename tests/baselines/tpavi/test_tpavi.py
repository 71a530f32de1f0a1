"""TPAVI module: attention against a hand loop, clip isolation, padding of clip tokens."""

import pytest
import torch

from ovavss_d2.baselines.tpavi import TPAVI, pad_clip_tokens


def _randomize_output(module: TPAVI) -> TPAVI:
    """TPAVI starts as the identity; give its output projection weights so the attention shows."""
    torch.nn.init.normal_(module.out.weight)
    if module.out.norm is not None:
        torch.nn.init.ones_(module.out.norm.weight)
    return module


def test_pad_clip_tokens():
    tokens = torch.arange(5.0)[:, None].repeat(1, 2)  # (5, 2), token n holds n
    padded, valid, clip_index = pad_clip_tokens(tokens, [2, 3])
    assert padded.shape == (2, 3, 2)
    assert valid.tolist() == [[True, True, False], [True, True, True]]
    assert clip_index.tolist() == [0, 0, 1, 1, 1]
    assert padded[0, :2, 0].tolist() == [0.0, 1.0] and padded[1, :, 0].tolist() == [2.0, 3.0, 4.0]
    with pytest.raises(ValueError):
        pad_clip_tokens(tokens, [2, 2])


def test_tpavi_starts_as_identity():
    torch.manual_seed(0)
    m = TPAVI(32, norm="GN")
    x = torch.randn(3, 32, 4, 5)
    audio = torch.randn(1, 3, 32)
    assert torch.equal(m(x, audio, torch.zeros(3, dtype=torch.long)), x)


@pytest.mark.parametrize("attention", ["dot", "softmax"])
def test_tpavi_matches_hand_loop(attention):
    torch.manual_seed(0)
    m = _randomize_output(TPAVI(6, inter_channels=4, attention=attention, norm=""))
    x = torch.randn(3, 6, 2, 3)  # 3 frames of one clip
    audio = torch.randn(1, 3, 6)
    out = m(x, audio, torch.zeros(3, dtype=torch.long))
    k, v = m.key(audio[0]), m.value(audio[0])  # (T, C')
    expected = torch.empty_like(x)
    for n in range(3):
        for i in range(2):
            for j in range(3):
                q = m.query.weight[:, :, 0, 0] @ x[n, :, i, j] + m.query.bias  # (C',)
                scores = k @ q  # (T,)
                if attention == "dot":
                    w = scores / 3
                else:
                    w = torch.softmax(scores / 2.0, dim=0)  # sqrt(C') = 2
                y = w @ v  # (C',)
                expected[n, :, i, j] = x[n, :, i, j] + m.out.weight[:, :, 0, 0] @ y + m.out.bias
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attention", ["dot", "softmax"])
def test_tpavi_clips_never_mix_and_padding_is_ignored(attention):
    torch.manual_seed(0)
    m = _randomize_output(TPAVI(32, attention=attention, norm="GN"))
    x = torch.randn(5, 32, 3, 3)  # clip 0: frames 0-1, clip 1: frames 2-4
    frame_audio = torch.randn(5, 32)
    audio, valid, clip_index = pad_clip_tokens(frame_audio, [2, 3])
    out = m(x, audio, clip_index, valid)

    # clip 0 alone (no padding) gives the same frames
    alone = m(x[:2], frame_audio[None, :2], torch.zeros(2, dtype=torch.long))
    torch.testing.assert_close(out[:2], alone)
    # changing clip 1's audio (and the padding slot of clip 0) leaves clip 0 unchanged
    audio2 = audio.clone()
    audio2[1] += 5.0
    audio2[0, 2] = 100.0
    out2 = m(x, audio2, clip_index, valid)
    torch.testing.assert_close(out2[:2], out[:2])
    assert not torch.allclose(out2[2:], out[2:])
