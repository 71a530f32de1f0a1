"""TextClassifierCache: template averaging, synonyms, chunking and the per-vocabulary cache."""

import pytest
import torch
import torch.nn.functional as F

from ovavss_d2.modeling.text_encoder import (
    TEMPLATE_SETS,
    VILD_TEMPLATES,
    TextClassifierCache,
    build_text_classifier_cache,
    get_templates,
)


class _LookupEncoder:
    """Text encoder returning fixed vectors per prompt; counts its calls."""

    dim = 3

    def __init__(self, table):
        self.table = table
        self.calls = []

    def encode(self, texts):
        self.calls.append(len(texts))
        return F.normalize(torch.stack([self.table[t] for t in texts]), dim=-1)


TEMPLATES = ("a {}", "the {}")
TABLE = {
    "a dog": torch.tensor([1.0, 0.0, 0.0]),
    "the dog": torch.tensor([0.0, 1.0, 0.0]),
    "a puppy": torch.tensor([1.0, 0.0, 0.0]),
    "the puppy": torch.tensor([1.0, 0.0, 0.0]),
    "a cat": torch.tensor([0.0, 0.0, 2.0]),
    "the cat": torch.tensor([0.0, 0.0, 1.0]),
}


def test_vild_templates():
    assert len(VILD_TEMPLATES) == 14 and len(set(VILD_TEMPLATES)) == 14
    assert all(t.count("{}") == 1 for t in VILD_TEMPLATES)
    assert get_templates("vild") is VILD_TEMPLATES and set(TEMPLATE_SETS) == {
        "vild",
        "single",
        "none",
    }
    with pytest.raises(ValueError):
        get_templates("imagenet80")


def test_template_and_synonym_averaging():
    cache = TextClassifierCache(_LookupEncoder(TABLE), TEMPLATES)
    r = 2**-0.5
    names = cache.encode_names(["dog", "cat"])
    torch.testing.assert_close(names, torch.tensor([[r, r, 0.0], [0.0, 0.0, 1.0]]))
    embeds, valid = cache.get_per_synonym([("dog", "puppy"), "cat"])
    assert embeds.shape == (2, 2, 3) and valid.tolist() == [[True, True], [True, False]]
    torch.testing.assert_close(embeds[1, 1], torch.zeros(3))
    dog = F.normalize(torch.tensor([r, r, 0.0]) + torch.tensor([1.0, 0.0, 0.0]), dim=0)
    torch.testing.assert_close(cache.get([("dog", "puppy"), ("cat",)])[0], dog)


def test_cache_per_vocabulary_and_chunking():
    encoder = _LookupEncoder(TABLE)
    cache = TextClassifierCache(encoder, TEMPLATES, chunk_size=4)
    first = cache.get([("dog", "puppy"), ("cat",)])
    assert encoder.calls == [4, 2]  # 6 prompts in chunks of 4
    cache.get([("dog", "puppy"), ("cat",)])
    cache.get([["dog", "puppy"], ["cat"]])  # same vocabulary, other container types
    assert len(encoder.calls) == 2
    other = cache.get([("cat",), ("dog", "puppy")])
    torch.testing.assert_close(other, first.flip(0))
    assert len(encoder.calls) == 4


def test_bad_inputs():
    with pytest.raises(ValueError):
        TextClassifierCache(_LookupEncoder(TABLE), ("no placeholder",))
    with pytest.raises(ValueError):
        TextClassifierCache(_LookupEncoder(TABLE), TEMPLATES).get([("dog",), ()])


def test_build_from_config(cfg):
    cfg.MODEL.TEXT_ENCODER.TEMPLATES = "single"
    cfg.MODEL.TEXT_ENCODER.CHUNK_SIZE = 7
    cache = build_text_classifier_cache(cfg, _LookupEncoder(TABLE))
    assert cache.templates == ("a photo of a {}.",) and cache.chunk_size == 7


def test_minilm_classifier_is_semantic(minilm):
    cache = TextClassifierCache(minilm, VILD_TEMPLATES)
    text = cache.get([("dog", "puppy"), ("violin",), ("vacuum cleaner",)])
    query = minilm.encode(["a barking dog"])
    assert (query @ text.t()).argmax().item() == 0
