"""CLIPTextEncoder: CLIP's text tower (a tiny random checkpoint via clip.load(path))."""

import pytest
import torch

from ovavss_d2.modeling.text_encoder import CLIPTextEncoder, build_text_encoder


def test_clip_text_encoder_from_checkpoint(cfg, tiny_clip_vit):
    cfg.MODEL.TEXT_ENCODER.CLIP_MODEL = tiny_clip_vit
    encoder = build_text_encoder(cfg)
    assert isinstance(encoder, CLIPTextEncoder) and encoder.dim == 32
    assert encoder.has_image_tower
    assert not any(p.requires_grad for p in encoder.clip_model.parameters())
    emb = encoder.encode(["a photo of a dog.", "a violin", "dog"])
    assert emb.shape == (3, 32) and emb.dtype == torch.float32
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(encoder.encode(["dog"])[0], emb[2])
    assert encoder.encode([]).shape == (0, 32)


def test_clip_model_is_loaded_once(tiny_clip_vit):
    a, b = CLIPTextEncoder(model=tiny_clip_vit), CLIPTextEncoder(model=tiny_clip_vit)
    assert a.clip_model is b.clip_model


def test_missing_clip_checkpoint_is_a_clear_error(cfg, tmp_path):
    cfg.MODEL.TEXT_ENCODER.CLIP_MODEL = str(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        build_text_encoder(cfg)


def test_encode_rejects_a_bare_string(tiny_clip_vit):
    with pytest.raises(TypeError):
        CLIPTextEncoder(model=tiny_clip_vit).encode("dog")
