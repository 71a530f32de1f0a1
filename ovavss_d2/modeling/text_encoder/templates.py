"""Prompt templates for building text classifiers from class names (the vocabulary's text side,
with text_classifier.py; config names: ``MODEL.TEXT_ENCODER.TEMPLATES`` and each source's
``TEMPLATES``)."""

from typing import Tuple

# The 14 prompt templates of ViLD (Gu et al., ICLR 2022), used by the OV-AVSS reference; the
# embeddings of one class name under all templates are averaged.
VILD_TEMPLATES: Tuple[str, ...] = (
    "a photo of a {}.",
    "This is a photo of a {}",
    "There is a {} in the scene",
    "There is the {} in the scene",
    "a photo of a {} in the scene",
    "a photo of a small {}.",
    "a photo of a medium {}.",
    "a photo of a large {}.",
    "This is a photo of a small {}.",
    "This is a photo of a medium {}.",
    "This is a photo of a large {}.",
    "There is a small {} in the scene.",
    "There is a medium {} in the scene.",
    "There is a large {} in the scene.",
)

SINGLE_TEMPLATE: Tuple[str, ...] = ("a photo of a {}.",)
NO_TEMPLATE: Tuple[str, ...] = ("{}",)

# Values of MODEL.TEXT_ENCODER.TEMPLATES.
TEMPLATE_SETS = {"vild": VILD_TEMPLATES, "single": SINGLE_TEMPLATE, "none": NO_TEMPLATE}


def get_templates(name: str) -> Tuple[str, ...]:
    """Template set by its config name ("vild", "single", "none")."""
    try:
        return TEMPLATE_SETS[name.lower()]
    except KeyError:
        raise ValueError(
            f"Unknown prompt template set {name!r}; choose from {sorted(TEMPLATE_SETS)}"
        ) from None
