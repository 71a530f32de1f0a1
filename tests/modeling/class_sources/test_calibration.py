"""The calibrated ensemble (configs/avss_synth/ovavss_effnet_yamnet_minilm_calibrated.yaml): a
confident learned base decision is not overridden by a weaker novel source."""

from pathlib import Path

import torch

from ovavss_d2 import get_cfg
from ovavss_d2.modeling.class_sources import ClassEvidence, combine_evidence, configured_weights

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "avss_synth"
VOCAB = ["horse", "cow", "donkey", "goat"]  # horse, cow base; donkey, goat novel
IS_BASE = torch.tensor([True, True, False, False])


def _weights(name: str):
    cfg = get_cfg()
    cfg.merge_from_file(str(CONFIGS / name))
    return configured_weights(cfg), cfg.MODEL.CLASS_SOURCES.BASE_BIAS


def _horse_or_donkey(name: str) -> str:
    """The learned classifier is sure of "horse" (0.95); the sound tags lean to the novel
    "donkey" (0.6, horse 0.2); the image tags say nothing (uniform)."""
    evidence = {
        "learned": ClassEvidence(probs=torch.tensor([[0.95, 0.03, 0.01, 0.01]])),
        "audio_tags": ClassEvidence(probs=torch.tensor([[0.2, 0.1, 0.6, 0.1]])),
        "image_tags": ClassEvidence(probs=torch.full((1, 4), 0.25)),
    }
    weights, bias = _weights(name)
    _, p_cls = combine_evidence(evidence, weights, IS_BASE, bias)
    return VOCAB[int(p_cls.argmax())]


def test_confident_base_class_survives_weaker_novel_evidence():
    assert _horse_or_donkey("ovavss_effnet_yamnet_minilm_calibrated.yaml") == "horse"


def test_the_shipped_ensemble_renames_it():
    """What the calibration fixes: the shipped weights give the novel name."""
    assert _horse_or_donkey("ovavss_effnet_yamnet_minilm.yaml") == "donkey"


def test_strong_novel_evidence_still_names_novel():
    """Calibration must not silence the novel sources: sound and image agreeing on "donkey"
    (0.9 each) beat a learned classifier that is unsure (0.5 horse, 0.45 cow)."""
    evidence = {
        "learned": ClassEvidence(probs=torch.tensor([[0.5, 0.45, 0.03, 0.02]])),
        "audio_tags": ClassEvidence(probs=torch.tensor([[0.04, 0.03, 0.9, 0.03]])),
        "image_tags": ClassEvidence(probs=torch.tensor([[0.04, 0.03, 0.9, 0.03]])),
    }
    weights, bias = _weights("ovavss_effnet_yamnet_minilm_calibrated.yaml")
    _, p_cls = combine_evidence(evidence, weights, IS_BASE, bias)
    assert VOCAB[int(p_cls.argmax())] == "donkey"
