"""Vocabularies of OV-AVSS: what the model is trained on and what it names at test time.

A vocabulary is a list of K entries, each a class key (``"emergency-car"``, prompted as "emergency
car") or a sequence of synonyms (``("emergency car", "ambulance")``, as ``prompt_names`` in
MetadataCatalog). Class names are read from MetadataCatalog or the config, never from code.
"""

from typing import Dict, List, Sequence, Tuple, Union

import torch
from detectron2.data import MetadataCatalog

__all__ = [
    "VocabularyEntry",
    "canonical_name",
    "dataset_vocabulary",
    "normalize_vocabulary",
    "training_vocabulary",
]

VocabularyEntry = Union[str, Sequence[str]]


def canonical_name(name: str) -> str:
    """Lower case, with "-" and "_" as spaces: how class names are compared."""
    return name.strip().lower().replace("-", " ").replace("_", " ")


def normalize_vocabulary(
    names: Sequence[VocabularyEntry],
) -> Tuple[List[str], List[Tuple[str, ...]]]:
    """Split a vocabulary into display names and prompt synonyms.

    Args:
        names: K entries, each a class key (``"emergency-car"``; prompted as "emergency car") or a
            sequence of synonyms (``("emergency car", "ambulance")``, as ``prompt_names`` in
            MetadataCatalog).
    Returns:
        ``(class_names, prompts)``: K display names (the key, or the first synonym) and K tuples of
        synonyms.
    """
    if isinstance(names, str):
        raise TypeError("a vocabulary is a list of class names, not one string")
    class_names, prompts = [], []
    for entry in names:
        if isinstance(entry, str):
            if not entry.strip():
                raise ValueError("empty class name in the vocabulary")
            class_names.append(entry.strip())
            prompts.append((entry.strip().replace("-", " ").replace("_", " "),))
        else:
            synonyms = tuple(str(s).strip() for s in entry if str(s).strip())
            if not synonyms:
                raise ValueError(f"vocabulary entry {entry!r} has no name")
            class_names.append(synonyms[0])
            prompts.append(synonyms)
    if not class_names:
        raise ValueError("the vocabulary is empty")
    return class_names, prompts


def dataset_vocabulary(dataset_name: str, override: Sequence[str] = ()) -> List[VocabularyEntry]:
    """The inference vocabulary for a dataset: ``override`` (``MODEL.OPEN_VOCAB.VOCABULARY``, where
    "a,b" names one class with synonyms a and b) when given, else the dataset's ``prompt_names``
    (``stuff_classes`` when it has none) without background."""
    if override:
        return [tuple(n.split(",")) if "," in n else n for n in override]
    meta = MetadataCatalog.get(dataset_name)
    prompts = getattr(meta, "prompt_names", None)
    if prompts:
        return [tuple(p) for p in prompts[1:]]
    stuff = getattr(meta, "stuff_classes", None)
    return list(stuff[1:]) if stuff else []


def training_vocabulary(dataset_names: Sequence[str], which: str = "base") -> Dict[str, object]:
    """The training vocabulary of the datasets in ``DATASETS.TRAIN``, read from MetadataCatalog.

    Args:
        dataset_names: training datasets; they must share one class list.
        which: "base" (the metadata's ``base_ids``; every class when there are none) or "all".
    Returns:
        dict with ``keys`` (K_train class keys), ``prompts`` (K_train synonym tuples) and
        ``dataset_to_train`` (int64 ``(K_data,)``: 0-based dataset class id -> training index, -1
        for classes outside the training vocabulary). Empty vocabulary when nothing is registered.
    """
    if which not in ("base", "all"):
        raise ValueError(f"MODEL.OVAVSS.TRAIN_VOCABULARY must be 'base' or 'all', got {which!r}")
    classes, ids = None, None
    for name in dataset_names:
        meta = MetadataCatalog.get(name)
        stuff = getattr(meta, "stuff_classes", None)
        if stuff is None:
            continue
        if classes is not None and list(stuff) != classes:
            raise ValueError(
                f"training datasets {list(dataset_names)} use different class lists; OVAVSS "
                "trains on "
                "one class list at a time"
            )
        classes = list(stuff)
        prompt_names = getattr(meta, "prompt_names", None) or [
            (c.replace("-", " "),) for c in stuff
        ]
        base = getattr(meta, "base_ids", None)
        ids = sorted(base) if (which == "base" and base) else list(range(1, len(stuff)))
    if classes is None:
        return {"keys": [], "prompts": [], "dataset_to_train": torch.zeros(0, dtype=torch.int64)}
    mapping = torch.full((len(classes) - 1,), -1, dtype=torch.int64)
    for train_index, label in enumerate(ids):
        mapping[label - 1] = train_index
    return {
        "keys": [classes[i] for i in ids],
        "prompts": [tuple(prompt_names[i]) for i in ids],
        "dataset_to_train": mapping,
    }
