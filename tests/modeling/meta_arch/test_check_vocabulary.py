"""``check_vocabulary``: the vocabulary a user gives the predictor and the demo."""

import pytest

from ovavss_d2.predictor import check_vocabulary


def test_names_and_synonyms_are_stripped():
    assert check_vocabulary([" dog ", ("fire truck", " fire engine ")]) == [
        "dog",
        ("fire truck", "fire engine"),
    ]


@pytest.mark.parametrize(
    "names, message",
    [
        ([("dog", "puppy"), ("dog", "hound")], r"more than once: \['dog'\]"),
        ([("dog", "puppy"), " dog"], r"more than once: \['dog'\]"),
        (["cat", ("cat",)], r"more than once: \['cat'\]"),
        ([("dog", " ")], "empty class name"),
        ([("dog", "")], "empty class name"),
        ([(" ", "dog")], "empty class name"),
        ([()], "empty class name"),
        ([], "the vocabulary is empty"),
        ("dog, cat", "a vocabulary is a list of class names"),
    ],
)
def test_bad_vocabularies(names, message):
    with pytest.raises(ValueError, match=message):
        check_vocabulary(names)
