"""Text classifiers (one embedding per class) built from class names, cached per vocabulary.

The vocabulary's text side lives beside the text encoders, not with one class source: the trained
model (its learned classifier, in training and at inference), ``audio_tags`` and ``image_tags`` all
embed names through it, each with its own prompt templates, and it depends on nothing but a text
encoder (``MODEL.TEXT_ENCODER.*``).

Shapes: ``K`` classes, ``S`` synonyms per class (padded to the longest list), ``P`` prompt
templates, ``E`` text-embedding size.
"""

import logging
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from detectron2.config import CfgNode

from ...data.vocabulary import synonym_tuples
from .templates import VILD_TEMPLATES, get_templates

__all__ = ["TextClassifierCache", "build_text_classifier_cache"]

logger = logging.getLogger(__name__)

Vocabulary = Tuple[Tuple[str, ...], ...]


class TextClassifierCache:
    """Builds and caches text classifiers for vocabularies.

    For each class name (synonym) the prompts ``template.format(name)`` are encoded in chunks,
    L2-normalised, averaged over the templates and re-normalised (ViLD / the reference). Classes
    with several synonyms get either the normalised mean over synonyms (:meth:`get`) or all synonym
    embeddings for a max over synonyms (:meth:`get_per_synonym`).

    Example::

        cache = TextClassifierCache(build_text_encoder(cfg), VILD_TEMPLATES)
        text = cache.get([("dog", "puppy"), ("violin",)])  # (2, E)
    """

    def __init__(self, encoder, templates: Sequence[str] = VILD_TEMPLATES, chunk_size: int = 256):
        """
        Args:
            encoder: a text encoder (``encode(list[str]) -> (N, E)``, ``dim``).
            templates: ``P`` format strings with one ``{}``.
            chunk_size: prompts per ``encoder.encode`` call.
        """
        if not templates or any("{}" not in t for t in templates):
            raise ValueError("Every prompt template needs one '{}' for the class name")
        self.encoder = encoder
        self.templates = tuple(templates)
        self.chunk_size = max(int(chunk_size), 1)
        self._cache: Dict[Vocabulary, Tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def dim(self) -> int:
        """E, the text-embedding size."""
        return self.encoder.dim

    def clear(self) -> None:
        """Forget every cached vocabulary."""
        self._cache.clear()

    @torch.no_grad()
    def encode_names(self, names: Sequence[str]) -> torch.Tensor:
        """Template-averaged embedding of each name.

        Args:
            names: ``N`` class names or synonyms.

        Returns:
            float32 ``(N, E)``, L2-normalised rows.
        """
        prompts: List[str] = [t.format(n) for n in names for t in self.templates]  # N * P
        chunks = [
            self.encoder.encode(prompts[i : i + self.chunk_size])
            for i in range(0, len(prompts), self.chunk_size)
        ]
        emb = torch.cat(chunks).float().view(len(names), len(self.templates), -1)  # (N, P, E)
        emb = F.normalize(emb, dim=-1).mean(dim=1)  # (N, E)
        return F.normalize(emb, dim=-1)

    def get_per_synonym(
        self, class_prompt_names: Sequence[Sequence[str]]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Embeddings of every synonym of every class (cached per vocabulary).

        Args:
            class_prompt_names: ``K`` sequences of synonyms (a plain string counts as one name).

        Returns:
            ``(embeds, valid)``: float32 ``(K, S, E)`` L2-normalised (zeros at padding) and bool
            ``(K, S)`` marking real synonyms.
        """
        vocab: Vocabulary = synonym_tuples(class_prompt_names)
        if vocab not in self._cache:
            flat = [n for names in vocab for n in names]
            logger.info(
                "Encoding a vocabulary of %d classes (%d names x %d templates)",
                len(vocab),
                len(flat),
                len(self.templates),
            )
            emb = self.encode_names(flat)  # (sum S_k, E)
            s_max = max(len(names) for names in vocab)
            embeds = emb.new_zeros(len(vocab), s_max, emb.shape[-1])
            valid = torch.zeros(len(vocab), s_max, dtype=torch.bool, device=emb.device)
            i = 0
            for k, names in enumerate(vocab):
                embeds[k, : len(names)] = emb[i : i + len(names)]
                valid[k, : len(names)] = True
                i += len(names)
            self._cache[vocab] = (embeds, valid)
        return self._cache[vocab]

    def get(self, class_prompt_names: Sequence[Sequence[str]]) -> torch.Tensor:
        """One embedding per class: the normalised mean over its synonyms.

        Args:
            class_prompt_names: ``K`` sequences of synonyms (a plain string counts as one name).

        Returns:
            float32 ``(K, E)``, L2-normalised rows.
        """
        embeds, valid = self.get_per_synonym(class_prompt_names)
        mean = (embeds * valid.unsqueeze(-1)).sum(1) / valid.sum(1, keepdim=True)  # (K, E)
        return F.normalize(mean, dim=-1)


def build_text_classifier_cache(
    cfg: CfgNode, text_encoder, templates: str = ""
) -> TextClassifierCache:
    """A :class:`TextClassifierCache` of ``text_encoder`` with ``MODEL.TEXT_ENCODER.CHUNK_SIZE``
    and the template set ``templates`` ("": ``MODEL.TEXT_ENCODER.TEMPLATES``)."""
    return TextClassifierCache(
        text_encoder,
        get_templates(templates or cfg.MODEL.TEXT_ENCODER.TEMPLATES),
        chunk_size=cfg.MODEL.TEXT_ENCODER.CHUNK_SIZE,
    )
