"""AudioVisualFusion: the audio context a frame hears, mismatched audio rejected."""

import pytest
import torch

from ovavss_d2.modeling.pixel_decoder import AudioVisualFusion


def test_fusion_audio_context():
    """ "frame": a frame only hears its own second; "clip": it hears the other seconds too."""
    torch.manual_seed(0)
    pixels, pos = torch.randn(3, 7, 16), torch.randn(3, 7, 16)
    audio = torch.randn(1, 3, 5)
    changed = audio.clone()
    changed[0, 2] += 1.0  # only frame 2's audio differs
    for context, frame0_changes in (("frame", False), ("clip", True)):
        fusion = AudioVisualFusion(16, 5, num_heads=2, audio_context=context).eval()
        with torch.no_grad():
            out_a = fusion(pixels, pos, audio, 3)
            out_b = fusion(pixels, pos, changed, 3)
        assert ((out_a[0] - out_b[0]).abs().max() > 1e-6) == frame0_changes, context
        assert (out_a[2] - out_b[2]).abs().max() > 1e-6, context


def test_fusion_rejects_mismatched_audio():
    fusion = AudioVisualFusion(16, 5, num_heads=2)
    with pytest.raises(ValueError, match="does not match"):
        fusion(torch.randn(4, 7, 16), torch.randn(4, 7, 16), torch.randn(1, 3, 5), 3)
