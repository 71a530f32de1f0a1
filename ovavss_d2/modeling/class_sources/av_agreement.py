"""A training-free sounding prior: does what a query looks like agree with what each second sounds
like? (issue 17, part 4; ``MODEL.OVAVSS.TEST.AV_AGREEMENT.*``, off by default.)

Shape letters: Q queries, T frames (one second of audio each), J labels of a tagger, E
text-embedding size.

Both taggers' label names live in the text-embedding space: a query's ImageNet tags give
``u_q = normalise(sum_j p_q(j) * text(label_j))`` (the ``image_tags`` source's construction) and
second t's AudioSet tags give ``a_t`` (the ``audio_tags`` source's). Their cosine says whether the
object shown sounds like the audio of that second; the prior is
``sigmoid(SCALE * (cos(u_q, a_t) - CENTER)) ** EXPONENT``, 1 for queries the image tagger does not
see (beyond its ``MAX_QUERIES``, or without a mask pixel). It multiplies the query's scores of
frame t like the per-frame sounding head does (``OVAVSS.query_scores``).
"""

import torch
import torch.nn.functional as F

from .audio_tags import AudioTagsSource, tag_scores, tags_in_text_space
from .base import ClipQueries
from .image_tags import ImageTagsSource, select_queries
from .tag_filters import suppress_tags, top_k_scores

__all__ = ["AVAgreement", "agreement_prior"]


def agreement_prior(
    query_embeds: torch.Tensor,
    second_embeds: torch.Tensor,
    scale: float,
    center: float,
    exponent: float = 1.0,
) -> torch.Tensor:
    """``(Q, T)`` prior ``sigmoid(scale * (cos - center)) ** exponent`` of unit text-space
    embeddings of queries ``(Q, E)`` and seconds ``(T, E)``."""
    cosine = query_embeds.float() @ second_embeds.float().t()
    return torch.sigmoid(scale * (cosine - center)) ** exponent


class AVAgreement:
    """The agreement prior of a clip's queries, from the model's ``image_tags`` and
    ``audio_tags`` sources (their taggers, label embeddings and settings)."""

    def __init__(
        self,
        image_tags: ImageTagsSource,
        audio_tags: AudioTagsSource,
        *,
        scale: float = 10.0,
        center: float = 0.3,
        exponent: float = 1.0,
    ):
        """
        Args:
            image_tags, audio_tags: the model's class sources of those names.
            scale, center, exponent: of :func:`agreement_prior`.
        """
        self.image_tags = image_tags
        self.audio_tags = audio_tags
        self.scale = float(scale)
        self.center = float(center)
        self.exponent = float(exponent)

    @torch.no_grad()
    def second_embeddings(self, audio_embeds: torch.Tensor) -> torch.Tensor:
        """``(T, E)`` unit text-space embeddings of each second's sound tags (``audio_tags``'s
        tag suppression and top-k)."""
        source = self.audio_tags
        labels = source.text_classifier.get(source.label_names).to(audio_embeds.device)
        scores = tag_scores(source.audio_encoder.classifier, audio_embeds)
        if source.keep is not None:
            scores = suppress_tags(scores, source.keep)
        return tags_in_text_space(top_k_scores(scores, source.top_k), labels)

    @torch.no_grad()
    def query_embeddings(self, clip: ClipQueries) -> torch.Tensor:
        """``(Q, E)`` unit text-space embeddings of each query's image tags, NaN rows for the
        queries the image tagger does not see (``image_tags``'s selection)."""
        source = self.image_tags
        device = clip.frames.device
        masks = clip.mask_probs()
        if source.select_by == "objectness":
            rank = clip.pred_objectness.float().softmax(-1)[:, 0]
        else:
            rank = masks.float().flatten(1).sum(-1)
        chosen = select_queries(rank.to(device), source.max_queries).nonzero(as_tuple=True)[0]
        labels = source.text_classifier.get(source.label_names).to(device)  # (J, E)
        out = torch.full((masks.shape[0], labels.shape[1]), float("nan"), device=device)
        if chosen.numel():
            probs = source.label_probs(clip.frames, masks[chosen].to(device).float())  # (Q', J)
            out[chosen] = F.normalize(top_k_scores(probs, source.top_k) @ labels, dim=-1)
        return out

    def __call__(self, clip: ClipQueries) -> torch.Tensor:
        """``(Q, T)`` prior of a clip's queries (1 where the image tagger sees nothing)."""
        queries = self.query_embeddings(clip)
        seconds = self.second_embeddings(clip.audio_embeds).to(queries.device)
        seen = ~queries.isnan().any(-1)  # (Q,)
        prior = agreement_prior(
            queries.nan_to_num(0.0), seconds, self.scale, self.center, self.exponent
        )
        return torch.where(seen[:, None], prior, torch.ones_like(prior))
