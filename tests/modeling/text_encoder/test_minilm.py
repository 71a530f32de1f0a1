"""MiniLMTextEncoder: the packaged all-MiniLM-L6-v2 embeddings are semantic."""

import torch


def test_minilm_embeddings_are_semantic(minilm):
    from ovavss_d2.modeling.text_encoder import MiniLMTextEncoder

    assert isinstance(minilm, MiniLMTextEncoder)  # built through the registry (conftest)
    assert minilm.dim == 384 and not minilm.has_image_tower
    emb = minilm.encode(["dog", "puppy", "violin", "cello"])
    assert emb.shape == (4, 384)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(4))
    sim = emb @ emb.t()
    assert sim[0, 1] > sim[0, 2] + 0.2  # dog ~ puppy, not violin
    assert sim[2, 3] > sim[2, 1]  # violin ~ cello, not puppy
