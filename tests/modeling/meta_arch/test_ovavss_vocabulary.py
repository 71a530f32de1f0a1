"""Vocabularies of OV-AVSS from MetadataCatalog: training vocabulary and test vocabularies (the
parsing rules: tests/data/test_vocabulary.py)."""

import pytest
import torch
from detectron2.data import MetadataCatalog
from ovavss_model_helpers import CLASSES, register_meta_only

from ovavss_d2.data.vocabulary import Vocabulary, dataset_vocabulary, training_vocabulary


def test_training_vocabulary_maps_dataset_ids():
    name = register_meta_only("_vocab_test_train")
    vocab = training_vocabulary([name])
    assert vocab["keys"] == ["dog", "violin", "lion"]
    assert vocab["prompts"] == [("dog",), ("violin",), ("lion",)]
    # 0-based dataset ids: dog 0 -> 0, violin 1 -> 1, cello 2 -> -1, lion 3 -> 2, tiger 4 -> -1
    assert vocab["dataset_to_train"].tolist() == [0, 1, -1, 2, -1]
    everything = training_vocabulary([name], "all")
    assert everything["keys"] == CLASSES[1:]
    assert torch.equal(everything["dataset_to_train"], torch.arange(5))


def test_training_vocabulary_errors_and_empty():
    a = register_meta_only("_vocab_test_a")
    b = "_vocab_test_b"
    MetadataCatalog.get(b).set(stuff_classes=["background", "cat"])
    with pytest.raises(ValueError, match="different class lists"):
        training_vocabulary([a, b])
    with pytest.raises(ValueError, match="base"):
        training_vocabulary([a], "novel")
    assert training_vocabulary(["_vocab_never_registered"])["keys"] == []


def test_dataset_vocabulary():
    name = register_meta_only("_vocab_test_test")
    vocab = dataset_vocabulary(name)
    assert vocab.names == CLASSES[1:] and vocab.prompts == [(c,) for c in CLASSES[1:]]
    vocab = dataset_vocabulary(name, ["cat", "fire truck|fire engine"])
    assert vocab.names == ["cat", "fire truck"]
    assert vocab.prompts == [("cat",), ("fire truck", "fire engine")]
    with pytest.warns(FutureWarning, match=r"write 'fire truck\|fire engine'"):
        old = dataset_vocabulary(name, ["cat", "fire truck,fire engine"])
    assert old == vocab
    assert dataset_vocabulary("_vocab_never_registered") == Vocabulary()
