"""The ``audio_tags`` class source: the clip's sounds named through the audio tagger's labels.

Shape letters: Q queries, T frames (one second of audio each), C audio-embedding size, J labels of
the audio classifier (AudioSet: 521), K classes of the vocabulary, E text-embedding size.

An audio encoder trained for audio tagging (YAMNet: 521 AudioSet classes) says *which sounds* play
in each second, with names ("Cattle, bovinae", "Violin, fiddle", "Fire engine, fire truck
(siren)"). Embedding those names with the text encoder puts each second of audio into the
text-embedding space, ``u_t = normalise(sum_j p_t(j) * text(label_j))`` over the top labels of the
second (:func:`tags_in_text_space`); its scaled cosine with the vocabulary's text embeddings
(:func:`tag_logits`), averaged over the clip's seconds, gives one class distribution of the clip's
sounds (:func:`clip_distribution`) that covers classes never seen in training. Every query of the
clip gets that distribution, or (``SECONDS``) the seconds its mask is in, or (``ASSIGN``) the share
of each second's tags that agrees with what the query looks like (sound_assignment.py); both sides
of the cosine may be mean-centred against hubness (``CENTER``, hubness.py). Keys:
``MODEL.CLASS_SOURCES.AUDIO_TAGS.*``.
"""

from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from torch import nn

from ..text_encoder import TextClassifierCache, build_text_classifier_cache
from .base import ClassEvidence, ClassSource, ClipQueries, register_class_source
from .ensemble import SourceWeights, combine_evidence
from .hubness import centered, label_mean
from .sound_assignment import assigned_sound_embeds, tag_assignment, visual_text_embeds
from .tag_filters import (
    per_query_second_weights,
    query_sound_logits,
    suppress_tags,
    suppression_keep,
    top_k_scores,
)

__all__ = [
    "AudioTagsSource",
    "audio_label_names",
    "clip_distribution",
    "tag_logits",
    "tag_scores",
    "tags_in_text_space",
    "visual_distribution",
]

VISUAL_SOURCES = {"learned": ("learned",), "image_tags": ("image_tags",)}
VISUAL_SOURCES["both"] = ("learned", "image_tags")


def visual_distribution(
    sources: Mapping[str, ClassSource], names: Sequence[str]
) -> Callable[[ClipQueries], torch.Tensor]:
    """``clip -> (Q, K)``: the geometric mean of the named sources' class distributions (each
    weight 1; classes a source cannot speak about get its uniform factor); the sources are looked
    up in ``sources`` at call time (it may still be filling when this is built)."""

    def p_vis(clip: ClipQueries) -> torch.Tensor:
        evidence = {n: sources[n](clip) for n in names}
        weights = {n: SourceWeights(1.0, 1.0) for n in names}
        return combine_evidence(evidence, weights, clip.is_base)[1]

    return p_vis


def audio_label_names(audio_encoder: nn.Module) -> Optional[List[str]]:
    """The label names of an audio encoder's tagging head, or None when it has none.

    An encoder qualifies with a ``classifier`` module mapping its embeddings ``(N, C)`` to label
    logits ``(N, J)`` and J names: a ``class_names`` attribute, or YAMNet's AudioSet names.
    """
    if not isinstance(getattr(audio_encoder, "classifier", None), nn.Module):
        return None
    names = getattr(audio_encoder, "class_names", None)
    if names is None:
        from ..audio_encoder.yamnet import YAMNet, yamnet_class_names

        if isinstance(audio_encoder, YAMNet):
            names = yamnet_class_names()
    return list(names) if names is not None else None


def tag_scores(head: nn.Module, audio_embeds: torch.Tensor, top_k: int = 0) -> torch.Tensor:
    """Sigmoid label scores ``(..., J)`` of audio embeddings ``(..., C)``; with ``top_k`` > 0 only
    each second's ``top_k`` best labels keep their score, the others are 0."""
    scores = head(audio_embeds.to(next(head.parameters()).dtype)).float().sigmoid()
    if top_k and top_k < scores.shape[-1]:
        top = scores.topk(top_k, dim=-1)
        scores = torch.zeros_like(scores).scatter_(-1, top.indices, top.values)
    return scores


def tags_in_text_space(scores: torch.Tensor, label_embeds: torch.Tensor) -> torch.Tensor:
    """``(..., E)`` unit vectors: the label text embeddings ``(J, E)`` weighted by ``scores``
    ``(..., J)``."""
    return F.normalize(scores @ label_embeds.to(scores), dim=-1)


def tag_logits(sound: torch.Tensor, class_embeds: torch.Tensor, logit_scale: float) -> torch.Tensor:
    """``(..., K)`` = ``logit_scale * cosine`` of sound embeddings ``(..., E)`` with the classes."""
    return logit_scale * sound @ class_embeds.to(sound).t()


def clip_distribution(logits: torch.Tensor) -> torch.Tensor:
    """``(K,)`` class distribution of a clip from per-second logits ``(T, K)``: softmax of the
    mean."""
    return logits.mean(0).softmax(-1)


@register_class_source("audio_tags")
class AudioTagsSource(ClassSource):
    """The clip's sound tags in the text space: one class distribution shared by its queries.

    Example::

        source = AudioTagsSource(yamnet, yamnet_class_names(), text_cache)
        evidence = source(clip)  # probs (Q, K), each row the clip's sound distribution
    """

    @configurable
    def __init__(
        self,
        audio_encoder: nn.Module,
        label_names: Sequence[str],
        text_classifier: TextClassifierCache,
        *,
        top_k: int = 5,
        logit_scale: float = 30.0,
        keep: Optional[torch.Tensor] = None,
        seconds: str = "clip_mean",
        second_weights: str = "mass",
        center: str = "",
        visual: Optional[Callable[[ClipQueries], torch.Tensor]] = None,
        assign_scale: float = 30.0,
        presence_threshold: float = 0.5,
    ):
        """
        Args:
            audio_encoder: the model's audio encoder; its ``classifier`` maps embeddings to the J
                label logits (sigmoid scores, multi-label as AudioSet).
            label_names: J label names.
            text_classifier: a ``TextClassifierCache`` (the same text encoder and templates embed
                the label names and the vocabulary on this path).
            top_k: labels of each second that form its text-space embedding (0: all, weighted).
            logit_scale: softmax temperature: logits = logit_scale * cosine.
            keep: bool ``(J,)``: tags whose scores count (the others, tags that name no object,
                are zeroed before the top ``top_k`` are chosen); None: all.
            seconds: "clip_mean" (every query gets the clip's distribution) or "query_seconds"
                (each query's from the seconds in which its mask is present).
            second_weights: "mass" or "max" of the query's mask per frame (``query_seconds``).
            center: "" or "labels": both sides of the cosine centred on the mean label-name
                embedding (hubness.py).
            visual: ``clip -> (Q, K)`` class distribution of what each query looks like; given,
                each second's tags are shared out over the queries present in it
                (sound_assignment.py); None: every query hears the whole second.
            assign_scale: softmax sharpness of that sharing, in cosine units.
            presence_threshold: a query is present in a second where its mask probability
                passes this somewhere.
        """
        label_mean(torch.zeros(1, 1), center)  # checks the mode
        self.audio_encoder = audio_encoder
        self.label_names = [(n,) for n in label_names]
        self.text_classifier = text_classifier
        self.top_k = int(top_k)
        self.logit_scale = float(logit_scale)
        if keep is not None and keep.numel() != len(self.label_names):
            raise ValueError(f"keep has {keep.numel()} tags, the tagger {len(self.label_names)}")
        self.keep = keep
        self.seconds = seconds
        self.second_weights = second_weights
        self.center = center
        self.visual = visual
        self.assign_scale = float(assign_scale)
        self.presence_threshold = float(presence_threshold)
        query_sound_logits(torch.zeros(1, 1), 1, seconds, torch.zeros(1, 1, 1, 1), second_weights)

    @classmethod
    def from_config(cls, cfg, context: Dict[str, object]) -> Dict[str, object]:
        """Read ``MODEL.CLASS_SOURCES.AUDIO_TAGS``; the tagger is ``context["audio_encoder"]``, the
        names are embedded by ``context["text_encoder"]``."""
        audio_encoder = context["audio_encoder"]
        names = audio_label_names(audio_encoder)
        if names is None:
            raise ValueError(
                f"class source 'audio_tags' (MODEL.CLASS_SOURCES.AUDIO_TAGS) needs an audio "
                f"encoder with a tagging head and label names (YAMNet); "
                f"{cfg.MODEL.AUDIO_ENCODER.NAME} has none"
            )
        c = cfg.MODEL.CLASS_SOURCES.AUDIO_TAGS
        return {
            "audio_encoder": audio_encoder,
            "label_names": names,
            "text_classifier": build_text_classifier_cache(
                cfg, context["text_encoder"], c.TEMPLATES
            ),
            "top_k": c.TOP_K,
            "logit_scale": c.LOGIT_SCALE,
            "keep": suppression_keep(c.SUPPRESS_TAGS, names),
            "seconds": c.SECONDS,
            "second_weights": c.SECOND_WEIGHTS,
            "center": c.CENTER,
            "visual": _configured_visual(cfg, context),
            "assign_scale": c.ASSIGN.SCALE,
        }

    def _second_scores(self, audio_embeds: torch.Tensor) -> torch.Tensor:
        """``(..., J)`` each second's kept tag scores (suppressed tags out, then the top ones)."""
        if self.keep is None:
            return tag_scores(self.audio_encoder.classifier, audio_embeds, self.top_k)
        scores = tag_scores(self.audio_encoder.classifier, audio_embeds)
        return top_k_scores(suppress_tags(scores, self.keep), self.top_k)

    @torch.no_grad()
    def logits(
        self, audio_embeds: torch.Tensor, vocabulary: Sequence[Tuple[str, ...]]
    ) -> torch.Tensor:
        """``(T, K)`` logits of each second's sounds over the vocabulary (K synonym tuples), from
        audio embeddings ``(T, C)`` (any leading shape works)."""
        device = audio_embeds.device
        labels = self.text_classifier.get(self.label_names).to(device)  # (J, E)
        classes = self.text_classifier.get(vocabulary).to(device)  # (K, E)
        sound = tags_in_text_space(self._second_scores(audio_embeds), labels)
        mean = label_mean(labels, self.center)
        return tag_logits(centered(sound, mean), centered(classes, mean), self.logit_scale)

    @torch.no_grad()
    def assigned_logits(self, clip: ClipQueries) -> torch.Tensor:
        """``(Q, K)`` logits of each query's share of the sound (``visual`` given)."""
        device = clip.audio_embeds.device
        labels = self.text_classifier.get(self.label_names).to(device)  # (J, E)
        classes = self.text_classifier.get(clip.vocabulary).to(device)  # (K, E)
        scores = self._second_scores(clip.audio_embeds)  # (T, J)
        top = scores.topk(min(self.top_k or scores.shape[-1], scores.shape[-1]), dim=-1)
        tags = labels[top.indices]  # (T, N, E)
        masks = clip.mask_probs().to(device)  # (Q, T, H, W)
        present = masks.flatten(2).amax(-1) > self.presence_threshold  # (Q, T)
        visual = visual_text_embeds(self.visual(clip).to(device), classes)
        share = tag_assignment(visual, tags, present, self.assign_scale)  # (Q, T, N)
        mean = label_mean(labels, self.center)
        sound = centered(assigned_sound_embeds(top.values, tags, share), mean)  # (Q, T, E)
        logits = tag_logits(sound, centered(classes, mean), self.logit_scale)  # (Q, T, K)
        if self.seconds == "query_seconds":
            weights = per_query_second_weights(masks, self.second_weights)
        else:
            weights = torch.full(present.shape, 1.0 / present.shape[1], device=device)
        return torch.einsum("qt,qtk->qk", weights.to(logits), logits)

    def __call__(self, clip: ClipQueries) -> ClassEvidence:
        num_queries = clip.pred_embeds.shape[0]
        if self.visual is not None:
            q_logits = self.assigned_logits(clip)
            return ClassEvidence(probs=q_logits.softmax(-1).to(clip.pred_embeds.device))
        if self.seconds == "query_seconds":
            logits = self.logits(clip.audio_embeds, clip.vocabulary)  # (T, K)
            q_logits = query_sound_logits(
                logits, num_queries, self.seconds, clip.mask_probs(), self.second_weights
            )
            return ClassEvidence(probs=q_logits.softmax(-1).to(clip.pred_embeds.device))
        p_clip = clip_distribution(self.logits(clip.audio_embeds, clip.vocabulary))  # (K,)
        return ClassEvidence(probs=p_clip.to(clip.pred_embeds.device).expand(num_queries, -1))


def _configured_visual(cfg, context: Dict[str, object]):
    """The ``visual`` argument of ``MODEL.CLASS_SOURCES.AUDIO_TAGS.ASSIGN.VISUAL``."""
    value = cfg.MODEL.CLASS_SOURCES.AUDIO_TAGS.ASSIGN.VISUAL
    if not value:
        return None
    if value not in VISUAL_SOURCES:
        raise ValueError(
            f"MODEL.CLASS_SOURCES.AUDIO_TAGS.ASSIGN.VISUAL must be '' or one of "
            f"{sorted(VISUAL_SOURCES)}, got {value!r}"
        )
    names = VISUAL_SOURCES[value]
    missing = [n for n in names if n not in cfg.MODEL.CLASS_SOURCES.NAMES]
    if missing:
        raise ValueError(
            f"MODEL.CLASS_SOURCES.AUDIO_TAGS.ASSIGN.VISUAL {value!r} needs the class sources "
            f"{missing} in MODEL.CLASS_SOURCES.NAMES"
        )
    return visual_distribution(context.get("class_sources", {}), names)
