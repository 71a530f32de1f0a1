"""Pseudo-novel folds over base classes: never a real novel class."""

import json
from pathlib import Path

import numpy as np
import pytest

from ovavss_d2.evaluation.pseudo_novel import harmonic_mean, pseudo_novel_folds, split_accuracy

SPLIT = Path(__file__).resolve().parents[2] / "ovavss_d2/data/classes/avss_synth_split.json"


def test_folds_of_avss_synth_hold_base_classes_only():
    split = json.loads(SPLIT.read_text())
    names = sorted(split["base"] + split["novel"])
    base_ids = [names.index(n) for n in split["base"]]
    novel_ids = {names.index(n) for n in split["novel"]}
    for num_folds in (2, 3, 4, 6):
        folds = pseudo_novel_folds(base_ids, num_folds, seed=num_folds, all_ids=range(len(names)))
        flat = [i for f in folds for i in f]
        assert not set(flat) & novel_ids
        assert sorted(flat) == sorted(base_ids)  # disjoint, and every base class once
        sizes = [len(f) for f in folds]
        assert max(sizes) - min(sizes) <= 1


def test_bad_folds():
    with pytest.raises(ValueError, match="num_folds"):
        pseudo_novel_folds([0, 1, 2], 3)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        pseudo_novel_folds([0, 1, 9], 2, all_ids=range(5))
    with pytest.raises(ValueError, match="twice"):
        pseudo_novel_folds([0, 1, 1, 2], 2)


def test_split_accuracy():
    is_novel = np.array([False, False, True, True])
    target = np.array([0, 1, 2, 3, 0])
    pred = np.array([0, 2, 2, 0, 0])
    r = split_accuracy(pred, target, is_novel)
    assert (r["n_base"], r["n_novel"]) == (3, 2)
    assert r["base"] == pytest.approx(2 / 3) and r["novel"] == pytest.approx(0.5)
    assert r["base_named_novel"] == pytest.approx(1 / 3)
    assert r["novel_named_base"] == pytest.approx(0.5)
    assert r["h"] == pytest.approx(harmonic_mean(2 / 3, 0.5))
    assert harmonic_mean(0.0, 0.0) == 0.0
