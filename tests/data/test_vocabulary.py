"""ovavss_d2.data.vocabulary: one parser for command-line strings, lists, files and metadata."""

import subprocess
import sys
import warnings

import pytest

from ovavss_d2.data.vocabulary import (
    Vocabulary,
    VocabularyEntry,
    VocabularyError,
    clean_name,
    metadata_vocabulary,
    parse_vocabulary,
    read_vocabulary_file,
    synonym_tuples,
)
from ovavss_d2.utils.preflight import InputError


def test_command_line_string():
    vocab = parse_vocabulary(" dog, emergency-car , fire truck|fire engine ,violin")
    assert vocab.names == ["dog", "emergency-car", "fire truck", "violin"]
    # a key is prompted with '-' and '_' as spaces; explicit synonyms as written
    assert vocab.prompts == [
        ("dog",),
        ("emergency car",),
        ("fire truck", "fire engine"),
        ("violin",),
    ]
    assert vocab[2] == VocabularyEntry("fire truck", ("fire truck", "fire engine"))
    assert len(vocab) == 4 and list(vocab)[0].name == "dog"


def test_every_form_gives_the_same_value(tmp_path):
    text = parse_vocabulary("dog, off-road buggy|buggy")
    listed = parse_vocabulary(["dog", "off-road buggy|buggy"])
    metadata = parse_vocabulary([("dog",), ("off-road buggy", "buggy")])
    path = tmp_path / "v.txt"
    path.write_text("# my classes\ndog\n\noff-road buggy | buggy\n")
    assert text == listed == metadata == read_vocabulary_file(path)
    assert text.prompts[1] == ("off-road buggy", "buggy")  # synonyms as written
    assert parse_vocabulary(text) is text
    assert parse_vocabulary(list(text)) == text  # entries pass through
    assert hash(text) == hash(listed)  # hashable: a cache key


def test_names_are_cleaned():
    vocab = parse_vocabulary([" \u200bfire  truck\ufeff ", ("dog ", " puppy")])
    assert vocab.names == ["fire truck", "dog"]
    assert vocab.prompts == [("fire truck",), ("dog", "puppy")]
    assert clean_name(" fire\u200b  truck\ufeff ") == "fire truck"


@pytest.mark.parametrize(
    "value, message",
    [
        ("dog,,violin", r"^--vocabulary: class name 2 of 3 is empty \('dog,,violin'\): remove"),
        ("dog,\u200b,violin", "class name 2 of 3 is empty"),
        (" , ", r"^--vocabulary: the vocabulary is empty \(' , '\)"),
        ("", "the vocabulary is empty"),
        ("dog, dog", r"more than once: \['dog'\]"),
        ("Fire-Truck, fire truck", r"more than once: \['fire truck'\]"),  # canonical names
        ("dog|, cat", r"class 1 of 2 holds an empty class name \('dog\|'\)"),
        ("|dog", "holds an empty class name"),
    ],
)
def test_bad_strings(value, message):
    with pytest.raises(VocabularyError, match=message):
        parse_vocabulary(value, where="--vocabulary")


@pytest.mark.parametrize(
    "names, message",
    [
        ([("dog", "puppy"), ("dog", "hound")], r"more than once: \['dog'\]"),
        ([("dog", "puppy"), " dog"], r"more than once: \['dog'\]"),
        (["cat", ("cat",)], r"more than once: \['cat'\]"),
        ([("dog", " ")], "empty class name"),
        ([("dog", "")], "empty class name"),
        ([(" ", "dog")], "empty class name"),
        ([()], r"class 1 of 1 holds an empty class name \(\(\)\)"),
        (["dog", "  "], "class 2 of 2 holds an empty class name"),
        ([], "^MODEL.X: the vocabulary is empty: give at least one class name"),
    ],
)
def test_bad_lists(names, message):
    with pytest.raises(VocabularyError, match=message):
        parse_vocabulary(names, where="MODEL.X")


def test_errors_are_input_errors():
    """Scripts report them as one line (InputError), callers may catch ValueError."""
    assert issubclass(VocabularyError, InputError) and issubclass(VocabularyError, ValueError)


def test_comma_in_a_list_element_is_deprecated_synonyms():
    with pytest.warns(FutureWarning, match=r"MODEL.X: 'emergency car,ambulance': a comma .*"):
        vocab = parse_vocabulary(["emergency car,ambulance", "dog"], where="MODEL.X")
    assert vocab == parse_vocabulary(["emergency car|ambulance", "dog"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse_vocabulary(["emergency car|ambulance"])  # the current syntax: no warning
        parse_vocabulary("emergency car, ambulance")  # a string: commas separate classes


def test_vocabulary_files(tmp_path):
    missing = tmp_path / "none.txt"
    with pytest.raises(VocabularyError, match=f"vocabulary file '{missing}' not found"):
        read_vocabulary_file(missing)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(VocabularyError, match="holds no class names"):
        read_vocabulary_file(empty)
    invisible = tmp_path / "invisible.txt"
    invisible.write_text("dog\n\u200b\u200b\nviolin\n")
    with pytest.raises(VocabularyError, match="line 2 holds only invisible characters"):
        read_vocabulary_file(invisible)
    repeated = tmp_path / "repeated.txt"
    repeated.write_text("dog\ncat\ndog\n")
    with pytest.raises(VocabularyError, match=rf"^{repeated}: the vocabulary names these"):
        read_vocabulary_file(repeated)


def test_metadata():
    from detectron2.data import MetadataCatalog

    MetadataCatalog.get("_vocab_meta_prompts").set(
        stuff_classes=["background", "emergency-car", "dog"],
        prompt_names=[("background",), ("emergency car", "ambulance"), ("dog",)],
    )
    MetadataCatalog.get("_vocab_meta_keys").set(stuff_classes=["background", "emergency-car"])
    try:
        vocab = metadata_vocabulary("_vocab_meta_prompts")
        assert vocab.names == ["emergency car", "dog"]
        assert vocab.prompts == [("emergency car", "ambulance"), ("dog",)]
        keys = metadata_vocabulary("_vocab_meta_keys")
        assert keys.names == ["emergency-car"] and keys.prompts == [("emergency car",)]
        assert metadata_vocabulary("_vocab_meta_none") == Vocabulary()
    finally:
        for name in ("_vocab_meta_prompts", "_vocab_meta_keys", "_vocab_meta_none"):
            MetadataCatalog.remove(name)


def test_synonym_tuples_take_label_sets_as_written():
    """The text classifier's form: no '|' or key rule, repeated names allowed (ImageNet)."""
    assert synonym_tuples(["crane", "crane", ("a-b|c", " d ")]) == (
        ("crane",),
        ("crane",),
        ("a-b|c", "d"),
    )
    with pytest.raises(ValueError, match="Class 1 needs at least one non-empty name"):
        synonym_tuples([("dog",), ()])


def test_module_imports_no_torch():
    code = (
        "import sys, ovavss_d2.data.vocabulary\n"
        "assert 'torch' not in sys.modules and 'detectron2' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
