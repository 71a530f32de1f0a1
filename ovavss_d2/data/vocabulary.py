"""Vocabularies: the classes a model names, parsed from every place a user or a dataset gives them.

One value type and one parser. :func:`parse_vocabulary` reads a command-line string, a list (a
config list such as ``MODEL.OVAVSS.TEST.VOCABULARY``, the lines of a vocabulary file, Python code)
or dataset metadata, and gives a :class:`Vocabulary` of :class:`VocabularyEntry` values; the
demo, the predictor, the model and the training script all go through it.

The rule, the same everywhere:

* **Classes** are separated by commas in one string (``--vocabulary "dog, violin, fire truck"``)
  and are the elements of a list or the lines of a file (blank lines and lines starting with
  ``#`` are skipped in files).
* **Synonyms** of one class are joined with ``|``: ``"emergency car|ambulance"`` is one class,
  shown as its first name ("emergency car") and prompted with all of its names. In metadata and
  Python code a class may also be a tuple of synonyms (``("emergency car", "ambulance")``, as the
  datasets' ``prompt_names``).
* A class given by one name is a **key**: it is shown as written and prompted with ``-`` and
  ``_`` read as spaces (``"emergency-car"`` is prompted as "emergency car"). Synonyms given
  explicitly are prompted as written.
* Names lose invisible characters (zero-width space, BOM) and outer spaces; inner runs of
  spaces become one. An empty name, an empty vocabulary or two classes with the same name
  (compared by :func:`canonical_name`) are errors (:class:`VocabularyError`, one line naming
  where the vocabulary came from).
* Deprecated: a comma inside a list element or a file line (``["emergency car,ambulance"]``, the
  old synonym syntax of configs) still separates synonyms in this release, with a
  ``FutureWarning`` saying to write ``|``; it will be an error in the next one.

This module imports neither torch nor Detectron2 at import time: the scripts check a
vocabulary before the heavy stack loads.
"""

import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Sequence, Tuple, Union

from ..utils.preflight import InputError

__all__ = [
    "OUTSIDE_VOCABULARY",
    "SYNONYM_SEPARATOR",
    "UNNAMED",
    "Vocabulary",
    "VocabularyEntry",
    "VocabularyError",
    "canonical_name",
    "clean_name",
    "dataset_vocabulary",
    "metadata_vocabulary",
    "parse_vocabulary",
    "prompt_name",
    "read_vocabulary_file",
    "synonym_tuples",
    "training_vocabulary",
]

SYNONYM_SEPARATOR = "|"
CLASS_SEPARATOR = ","
# Values of a training vocabulary's ``dataset_to_train`` besides training indices: a class the
# classifier must not see (a training clip holding one is an error), and a class whose objects are
# foreground without a name (objectness and masks, no class target).
OUTSIDE_VOCABULARY = -1
UNNAMED = -2


class VocabularyError(InputError):
    """A vocabulary that cannot be used; the message starts with where it came from."""


def clean_name(name: str) -> str:
    """``name`` without invisible format characters (zero-width space, BOM) and outer spaces,
    inner runs of white space as one space."""
    visible = "".join(c for c in str(name) if unicodedata.category(c) != "Cf")
    return " ".join(visible.split())


def prompt_name(key: str) -> str:
    """How a class key is prompted: ``-`` and ``_`` read as spaces."""
    return key.replace("-", " ").replace("_", " ")


def canonical_name(name: str) -> str:
    """Lower case, with "-" and "_" as spaces: how class names are compared."""
    return prompt_name(name.strip().lower())


@dataclass(frozen=True)
class VocabularyEntry:
    """One class: its display name and the names (synonyms) its text embedding is built from.

    ``pred_classes == k`` and output channel ``k + 1`` mean ``vocabulary[k].name``.
    """

    name: str
    synonyms: Tuple[str, ...]


@dataclass(frozen=True)
class Vocabulary:
    """An ordered tuple of classes (hashable, comparable; empty only where nothing is known)."""

    entries: Tuple[VocabularyEntry, ...] = ()

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[VocabularyEntry]:
        return iter(self.entries)

    def __getitem__(self, index: int) -> VocabularyEntry:
        return self.entries[index]

    @property
    def names(self) -> List[str]:
        """K display names."""
        return [e.name for e in self.entries]

    @property
    def prompts(self) -> List[Tuple[str, ...]]:
        """K tuples of synonyms, what the text encoder is given."""
        return [e.synonyms for e in self.entries]


RawEntry = Union[str, Sequence[str], VocabularyEntry]
VocabularyLike = Union[str, Vocabulary, Sequence[RawEntry]]


def _key_entry(text: str) -> VocabularyEntry:
    """A class given as one string (not yet checked for empty names)."""
    if SYNONYM_SEPARATOR in text:
        synonyms = tuple(clean_name(s) for s in text.split(SYNONYM_SEPARATOR))
        return VocabularyEntry(synonyms[0], synonyms)
    name = clean_name(text)
    return VocabularyEntry(name, (prompt_name(name),))


def _list_entry(item: RawEntry, where: str) -> VocabularyEntry:
    """One element of a list: an entry, a string (key or "a|b") or a tuple of synonyms."""
    if isinstance(item, VocabularyEntry):
        return item
    if isinstance(item, str):
        if CLASS_SEPARATOR in item:
            parts = [clean_name(s) for s in item.replace(SYNONYM_SEPARATOR, ",").split(",")]
            warnings.warn(
                f"{where}: {item!r}: a comma between synonyms is deprecated (read as synonyms "
                f"in this release, an error in the next): write {SYNONYM_SEPARATOR.join(parts)!r}",
                FutureWarning,
                stacklevel=3,
            )
            return VocabularyEntry(parts[0], tuple(parts))
        return _key_entry(item)
    synonyms = tuple(clean_name(s) for s in item)
    return VocabularyEntry(synonyms[0] if synonyms else "", synonyms)


def _checked(entries: List[VocabularyEntry], raw: Sequence, where: str) -> Vocabulary:
    """The entries as a Vocabulary, or a VocabularyError for an empty name or a duplicate."""
    if not entries:
        raise VocabularyError(f"{where}: the vocabulary is empty: give at least one class name")
    for k, entry in enumerate(entries):
        if not entry.synonyms or not entry.name or not all(entry.synonyms):
            raise VocabularyError(
                f"{where}: class {k + 1} of {len(entries)} holds an empty class name "
                f"({raw[k]!r})"
            )
    seen, repeated = set(), set()
    for entry in entries:
        key = canonical_name(entry.name)
        if key in seen:
            repeated.add(entry.name)
        seen.add(key)
    if repeated:
        raise VocabularyError(
            f"{where}: the vocabulary names these classes more than once: {sorted(repeated)}"
        )
    return Vocabulary(tuple(entries))


def _parse_string(text: str, where: str) -> Vocabulary:
    """A command-line string: classes separated by commas, synonyms by "|"."""
    parts = text.split(CLASS_SEPARATOR)
    if not any(clean_name(p) for p in parts):
        raise VocabularyError(
            f"{where}: the vocabulary is empty ({text!r}): give at least one class name"
        )
    for k, part in enumerate(parts):
        if not clean_name(part):
            raise VocabularyError(
                f"{where}: class name {k + 1} of {len(parts)} is empty ({text!r}): remove the "
                "extra comma"
            )
    return _checked([_key_entry(p) for p in parts], parts, where)


def parse_vocabulary(value: VocabularyLike, where: str = "vocabulary") -> Vocabulary:
    """The one vocabulary parser (the rule is in the module docstring).

    Args:
        value: a :class:`Vocabulary` (returned as it is); a string (the command-line form,
            ``"dog, emergency car|ambulance"``); or a sequence whose elements are each a
            :class:`VocabularyEntry`, a string (a key, or synonyms joined by "|") or a sequence
            of synonyms (the metadata form, ``("emergency car", "ambulance")``).
        where: where the vocabulary comes from, the start of error messages (``--vocabulary``,
            a file, a config key).

    Raises:
        VocabularyError: an empty vocabulary, an empty name, or a class named twice.
    """
    if isinstance(value, Vocabulary):
        return value
    if isinstance(value, str):
        return _parse_string(value, where)
    raw = list(value)
    entries = []
    for item in raw:
        entries.append(_list_entry(item, where))
    return _checked(entries, raw, where)


def read_vocabulary_file(path: Union[str, Path]) -> Vocabulary:
    """A vocabulary file: one class a line (synonyms joined by "|"); blank lines and lines
    starting with ``#`` are skipped.

    Raises:
        VocabularyError: the file is missing or unreadable, holds no class, or a line holds only
            invisible characters; as :func:`parse_vocabulary` otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise VocabularyError(f"vocabulary file '{path}' not found")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise VocabularyError(f"vocabulary file '{path}' cannot be read ({e})") from None
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.strip().startswith("#"):
            continue
        if not clean_name(line):
            raise VocabularyError(
                f"{path}: line {number} holds only invisible characters, not a class name"
            )
        lines.append(line)
    if not lines:
        raise VocabularyError(f"vocabulary file '{path}' holds no class names")
    return parse_vocabulary(lines, where=str(path))


def metadata_vocabulary(dataset_name: str) -> Vocabulary:
    """A registered dataset's classes without background: its ``prompt_names`` (synonym tuples),
    else its ``stuff_classes`` (keys); an empty Vocabulary when it has neither."""
    from detectron2.data import MetadataCatalog

    meta = MetadataCatalog.get(dataset_name)
    prompts = getattr(meta, "prompt_names", None)
    if prompts:
        return parse_vocabulary([tuple(p) for p in prompts[1:]], where=f"dataset {dataset_name}")
    stuff = getattr(meta, "stuff_classes", None)
    if stuff:
        return parse_vocabulary(list(stuff[1:]), where=f"dataset {dataset_name}")
    return Vocabulary()


def dataset_vocabulary(
    dataset_name: str,
    override: Sequence[RawEntry] = (),
    where: str = "the config's VOCABULARY",
) -> Vocabulary:
    """The inference vocabulary for a dataset: ``override`` (a config list, passed by the caller)
    when given, else :func:`metadata_vocabulary` of the dataset."""
    if override:
        return parse_vocabulary(override, where=where)
    return metadata_vocabulary(dataset_name)


def synonym_tuples(class_prompt_names: Sequence[Union[str, Sequence[str]]]) -> Tuple:
    """Prompt names as the text classifier caches them: one tuple of names per class.

    Unlike :func:`parse_vocabulary` the names are taken as written (no "|" or key rule) and may
    repeat across classes: label sets such as ImageNet's or AudioSet's are passed here too. A
    string counts as one name.

    Raises:
        ValueError: a class without any non-empty name.
    """
    out = []
    for k, names in enumerate(class_prompt_names):
        names = (names,) if isinstance(names, str) else tuple(names)
        if not names or not all(isinstance(n, str) and n.strip() for n in names):
            raise ValueError(f"Class {k} needs at least one non-empty name, got {names!r}")
        out.append(tuple(n.strip() for n in names))
    return tuple(out)


def training_vocabulary(
    dataset_names: Sequence[str], which: str = "base", pool_names: bool = True
) -> Dict[str, object]:
    """The training vocabulary of the datasets in ``DATASETS.TRAIN``, read from MetadataCatalog.

    Args:
        dataset_names: training datasets; they must share one class list.
        which: "base" (the metadata's ``base_ids``; every class when there are none) or "all".
        pool_names: whether the vocabulary keeps the metadata's ``pool_ids`` (classes only a
            training pool adds); False makes them unnamed foreground (:data:`UNNAMED`).
    Returns:
        dict with ``keys`` (K_train class keys), ``prompts`` (K_train synonym tuples) and
        ``dataset_to_train`` (int64 ``(K_data,)``: 0-based dataset class id -> training index,
        :data:`OUTSIDE_VOCABULARY` (-1) for classes outside the training vocabulary,
        :data:`UNNAMED` (-2) for pool classes left unnamed). Empty vocabulary when nothing is
        registered.
    """
    import torch
    from detectron2.data import MetadataCatalog

    if which not in ("base", "all"):
        raise ValueError(f"MODEL.OVAVSS.TRAIN_VOCABULARY must be 'base' or 'all', got {which!r}")
    classes, ids, unnamed = None, None, []
    for name in dataset_names:
        meta = MetadataCatalog.get(name)
        stuff = getattr(meta, "stuff_classes", None)
        if stuff is None:
            continue
        if classes is not None and list(stuff) != classes:
            raise ValueError(
                f"training datasets {list(dataset_names)} use different class lists; OVAVSS "
                "trains on one class list at a time"
            )
        classes = list(stuff)
        prompt_names = getattr(meta, "prompt_names", None) or [(prompt_name(c),) for c in stuff]
        base = getattr(meta, "base_ids", None)
        ids = sorted(base) if (which == "base" and base) else list(range(1, len(stuff)))
        if not pool_names:
            unnamed = sorted(set(getattr(meta, "pool_ids", None) or []))
            ids = [i for i in ids if i not in unnamed]
    if classes is None:
        return {"keys": [], "prompts": [], "dataset_to_train": torch.zeros(0, dtype=torch.int64)}
    mapping = torch.full((len(classes) - 1,), OUTSIDE_VOCABULARY, dtype=torch.int64)
    for train_index, label in enumerate(ids):
        mapping[label - 1] = train_index
    for label in unnamed:
        mapping[label - 1] = UNNAMED
    return {
        "keys": [classes[i] for i in ids],
        "prompts": [tuple(prompt_names[i]) for i in ids],
        "dataset_to_train": mapping,
    }
