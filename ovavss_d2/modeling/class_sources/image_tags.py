"""``image_tags``: naming queries by a frozen ImageNet-1k classifier's labels, embedded in the
text space (the offline counterpart of CLIP's image tower).

Shape letters: Q queries, T frames, H x W frame size, K classes of the vocabulary, J = 1000
ImageNet categories, E text-embedding size, M crops.

For each selected query the classifier sees its masked crops (mode "crop": the query's mask above
a threshold in each frame where it is present, a square box with a margin, grey outside the mask,
all crops of a clip in one batch) or mask-pooled features of the whole frames (mode "mask_pool").
Its ImageNet label distribution, averaged over the query's frames and cut to the top labels,
becomes a text embedding ``u_q = normalise(sum_j p_q(j) * text(label_j))`` (the sound tags'
construction); ``softmax_k(LOGIT_SCALE * cos(u_q, text(class_k)))`` is the query's class
distribution. Queries not selected (beyond ``MAX_QUERIES``) and queries with no mask pixel get the
uniform distribution: no information in a geometric ensemble.
"""

import logging
from typing import Dict, Sequence

import torch
import torch.nn.functional as F
from detectron2.config import configurable

from ..crops import mask_pool, masked_crops
from ..text_encoder import TextClassifierCache, build_text_classifier_cache
from .base import ClassEvidence, ClassSource, ClipQueries, register_class_source
from .hubness import centered, label_mean
from .imagenet_classifier import (
    ImageNetClassifier,
    imagenet_categories,
    normalise_frames,
)

__all__ = ["ImageTagsSource", "select_queries"]

logger = logging.getLogger(__name__)

_MODES = ("crop", "mask_pool")
_SELECT_BY = ("objectness", "mask_mass")


def select_queries(scores: torch.Tensor, max_queries: int) -> torch.Tensor:
    """bool ``(Q,)``: the ``max_queries`` highest ``scores (Q,)`` (all when 0 or >= Q)."""
    keep = torch.zeros_like(scores, dtype=torch.bool)
    if max_queries <= 0 or max_queries >= scores.numel():
        return keep.fill_(True)
    keep[scores.topk(max_queries).indices] = True
    return keep


@register_class_source("image_tags")
class ImageTagsSource(ClassSource):
    """Class distribution of each query from a frozen ImageNet classifier's label names.

    Example::

        source = ImageTagsSource(ImageNetClassifier(), imagenet_categories(), text_cache)
        evidence = source(clip)  # evidence.probs: (Q, K)
    """

    name = "image_tags"

    @configurable
    def __init__(
        self,
        classifier: ImageNetClassifier,
        label_names: Sequence[str],
        text_classifier: TextClassifierCache,
        *,
        mode: str = "crop",
        input_format: str = "RGB",
        input_size: int = 224,
        crop_margin: float = 0.1,
        mask_threshold: float = 0.5,
        min_mask_pixels: int = 16,
        max_queries: int = 10,
        select_by: str = "objectness",
        top_k: int = 20,
        logit_scale: float = 30.0,
        speak_threshold: float = 0.78,
        center: str = "",
    ):
        """
        Args:
            classifier: the frozen ImageNet classifier (J outputs).
            label_names: J category names.
            text_classifier: embeds the label names and the vocabulary (same encoder, templates).
            mode: "crop" (masked crops) or "mask_pool" (mask-pooled features of whole frames).
            input_format: channel order of ``ClipQueries.frames`` ("RGB" / "BGR").
            input_size: side of the square crops fed to the classifier.
            crop_margin: box growth per side as a fraction of the box's longer side.
            mask_threshold: a pixel belongs to the query where its mask probability passes this.
            min_mask_pixels: frames where a query has fewer mask pixels are not classified.
            max_queries: queries classified per clip (0: all); the others get uniform.
            select_by: rank queries by "objectness" (sounding-object probability) or "mask_mass".
            top_k: ImageNet labels forming a query's text embedding (0: all 1000, weighted).
            logit_scale: logits = logit_scale * cosine.
            speak_threshold: the source speaks about a class when the class's best cosine with
                any label name reaches this (-1: every class).
            center: "" or "labels": mean-centring of both sides on the mean label-name
                embedding before the cosine (hubness.py).
        """
        label_mean(torch.zeros(1, 1), center)  # checks the mode
        if mode not in _MODES:
            raise ValueError(f"MODEL.CLASS_SOURCES.IMAGE_TAGS.MODE must be one of {_MODES}")
        if select_by not in _SELECT_BY:
            raise ValueError(
                f"MODEL.CLASS_SOURCES.IMAGE_TAGS.SELECT_BY must be one of {_SELECT_BY}"
            )
        if len(label_names) != classifier.fc.out_features:
            raise ValueError(
                f"{len(label_names)} label names for a classifier of "
                f"{classifier.fc.out_features} outputs"
            )
        self.classifier = classifier
        self.label_names = [(n,) for n in label_names]
        self.text_classifier = text_classifier
        self.mode = mode
        self.input_format = input_format
        self.input_size = int(input_size)
        self.crop_margin = float(crop_margin)
        self.mask_threshold = float(mask_threshold)
        self.min_mask_pixels = int(min_mask_pixels)
        self.max_queries = int(max_queries)
        self.select_by = select_by
        self.top_k = int(top_k)
        self.logit_scale = float(logit_scale)
        self.speak_threshold = float(speak_threshold)
        self.center = center
        self._last = (None, None)  # (clip, evidence): a second ask for the same clip is free

    @classmethod
    def from_config(cls, cfg, context: Dict[str, object]) -> Dict[str, object]:
        """Read ``MODEL.CLASS_SOURCES.IMAGE_TAGS``; ``context["text_encoder"]`` embeds names;
        frames come in ``INPUT.FORMAT`` channel order."""
        c = cfg.MODEL.CLASS_SOURCES.IMAGE_TAGS
        return {
            "classifier": ImageNetClassifier(c.VARIANT, c.WEIGHTS),
            "label_names": imagenet_categories(),
            "text_classifier": build_text_classifier_cache(
                cfg, context["text_encoder"], c.TEMPLATES
            ),
            "mode": c.MODE,
            "input_format": cfg.INPUT.FORMAT,
            "input_size": c.INPUT_SIZE,
            "crop_margin": c.CROP_MARGIN,
            "mask_threshold": c.MASK_THRESHOLD,
            "min_mask_pixels": c.MIN_MASK_PIXELS,
            "max_queries": c.MAX_QUERIES,
            "select_by": c.SELECT_BY,
            "top_k": c.TOP_K,
            "logit_scale": c.LOGIT_SCALE,
            "speak_threshold": c.SPEAK_THRESHOLD,
            "center": c.CENTER,
        }

    # ---- ImageNet label distributions ----
    @torch.no_grad()
    def _crop_label_probs(self, frames: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """``(Q', J)`` mean label distribution over each query's masked crops (NaN: no crop)."""
        present = masks.flatten(2).sum(-1) >= self.min_mask_pixels  # (Q', T)
        q_idx, t_idx = present.nonzero(as_tuple=True)
        images = normalise_frames(frames, self.input_format)
        num_labels = self.classifier.fc.out_features
        probs = torch.full((masks.shape[0], num_labels), float("nan"), device=frames.device)
        if q_idx.numel() == 0:
            return probs
        # grey (0) outside the mask; CROP_MARGIN is crops.py's margin; legacy roi_align sampling
        crops = masked_crops(
            images[t_idx], masks[q_idx, t_idx], self.input_size, self.crop_margin, aligned=False
        )
        crop_probs = self.classifier(crops).float().softmax(-1)  # (M, J)
        sums = torch.zeros_like(probs).index_add_(0, q_idx, crop_probs)
        counts = present.sum(1, keepdim=True)  # (Q', 1)
        return torch.where(counts > 0, sums / counts.clamp(min=1), probs)

    @torch.no_grad()
    def _pooled_label_probs(self, frames: torch.Tensor, mask_probs: torch.Tensor) -> torch.Tensor:
        """``(Q', J)`` label distribution of each query's mask-pooled features (NaN: no mask)."""
        features = self.classifier.features(normalise_frames(frames, self.input_format))
        pooled, mass = mask_pool(
            features.float(), mask_probs.float().transpose(0, 1), resize="area", clamp_mass=True
        )  # (T, Q', F), (T, Q')
        # (Q', T, F), (Q', T); mass row-major so that its sums over T add in a fixed order
        pooled, mass = pooled.transpose(0, 1), mass.t().contiguous()
        weights = mass / mass.sum(1, keepdim=True).clamp(min=1e-6)
        probs = self.classifier.head((weights[..., None] * pooled).sum(1)).softmax(-1)
        pixels = (mask_probs > self.mask_threshold).flatten(1).sum(-1)  # (Q',)
        return probs.masked_fill((pixels < self.min_mask_pixels)[:, None], float("nan"))

    def label_probs(self, frames: torch.Tensor, mask_probs: torch.Tensor) -> torch.Tensor:
        """ImageNet label distribution of each query.

        Args:
            frames: uint8 ``(T, 3, H, W)`` in ``input_format`` order.
            mask_probs: float ``(Q', T, H, W)`` mask probabilities of the selected queries.
        Returns:
            float32 ``(Q', J)`` rows summing to 1; NaN rows for queries with no mask pixels.
        """
        self.classifier.to(frames.device)
        if self.mode == "crop":
            return self._crop_label_probs(frames, mask_probs > self.mask_threshold)
        return self._pooled_label_probs(frames, mask_probs)

    # ---- text space ----
    def class_logits(self, label_probs: torch.Tensor, vocabulary) -> torch.Tensor:
        """``(N, J)`` label distributions -> ``(N, K)`` logits over the vocabulary."""
        labels = self.text_classifier.get(self.label_names).to(label_probs.device)  # (J, E)
        classes = self.text_classifier.get(vocabulary).to(label_probs.device)  # (K, E)
        p = label_probs
        if self.top_k and self.top_k < p.shape[-1]:
            top = p.topk(self.top_k, dim=-1)
            p = torch.zeros_like(p).scatter_(-1, top.indices, top.values)
        tagged = F.normalize(p @ labels, dim=-1)  # (N, E)
        mean = label_mean(labels, self.center)
        return self.logit_scale * centered(tagged, mean) @ centered(classes, mean).t()

    def speaks(self, vocabulary) -> torch.Tensor:
        """bool ``(K,)``: classes whose best cosine with any label name reaches the threshold."""
        labels = self.text_classifier.get(self.label_names)
        classes = self.text_classifier.get(vocabulary)
        return (classes @ labels.t()).amax(1) >= self.speak_threshold

    def __call__(self, clip: ClipQueries) -> ClassEvidence:
        if self._last[0] is clip:  # asked again by another source (the sound assignment)
            return self._last[1]
        evidence = self._evidence(clip)
        self._last = (clip, evidence)
        return evidence

    def _evidence(self, clip: ClipQueries) -> ClassEvidence:
        device = clip.frames.device
        dtype = clip.class_embeds.dtype if clip.class_embeds.is_floating_point() else torch.float32
        num_queries, num_classes = clip.pred_embeds.shape[0], len(clip.vocabulary)
        probs = torch.full((num_queries, num_classes), 1.0 / num_classes, device=device)
        masks = clip.mask_probs()
        if self.select_by == "objectness":
            rank = clip.pred_objectness.float().softmax(-1)[:, 0]
        else:
            rank = masks.float().flatten(1).sum(-1)
        chosen = select_queries(rank.to(device), self.max_queries).nonzero(as_tuple=True)[0]
        if chosen.numel():
            label_probs = self.label_probs(clip.frames, masks[chosen].to(device).float())
            seen = ~label_probs.isnan().any(-1)
            if seen.any():
                logits = self.class_logits(label_probs[seen], clip.vocabulary)
                probs[chosen[seen]] = logits.softmax(-1)
        speaks = self.speaks(clip.vocabulary).to(device)
        return ClassEvidence(probs=probs.to(dtype), speaks=speaks)
