"""Sound naming that survives noise: non-object tag suppression and per-query seconds.

Shape letters: N rows (seconds, clips), J tags of the audio tagger (AudioSet: 521), E
text-embedding size, K classes of the vocabulary, Q queries, T frames (one second each),
H x W mask size.

* :func:`suppress_tags` zeroes the scores of tags that name no object (silence, noise kinds,
  acoustic scenes, music genres, generic parents such as "Animal" or "Vehicle"; the list is the
  data file ``ovavss_d2/data/classes/audioset_non_object_tags.txt``) before a second's top tags are
  embedded, so they cannot pull the class distribution.
* :func:`per_query_second_weights` and :func:`per_query_logits` give each query the sound of the
  seconds in which its mask is present instead of the clip mean, so the sources of a
  multi-source clip stop mixing into one name.
"""

import os
from pathlib import Path
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F

__all__ = [
    "NON_OBJECT_TAGS_FILE",
    "keep_tags",
    "per_query_logits",
    "per_query_second_weights",
    "query_sound_logits",
    "read_tag_list",
    "suppress_tags",
    "suppression_keep",
    "tag_text_logits",
    "top_k_scores",
]

NON_OBJECT_TAGS_FILE = str(
    Path(__file__).resolve().parents[2] / "data" / "classes" / "audioset_non_object_tags.txt"
)


def read_tag_list(path: Union[str, os.PathLike]) -> List[str]:
    """Tag names of a list file (one per line, exact; blank lines and ``#`` comments skipped)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"tag list not found: {path}")
    with open(path, encoding="utf-8") as f:
        return [s for s in (line.strip() for line in f) if s and not s.startswith("#")]


def keep_tags(
    label_names: Sequence[str], suppressed: Sequence[str], source: str = ""
) -> torch.Tensor:
    """bool ``(J,)``: False for the tags named in ``suppressed``.

    Raises:
        ValueError: a suppressed name is not one of the tagger's labels (a typo would silently
            suppress nothing); ``source`` names the list file in the message.
    """
    index = {n: j for j, n in enumerate(label_names)}
    unknown = [n for n in suppressed if n not in index]
    if unknown:
        where = f"{source}: " if source else ""
        raise ValueError(
            f"{where}{len(unknown)} tags are no label of the tagger, e.g. {unknown[:3]}"
        )
    keep = torch.ones(len(label_names), dtype=torch.bool)
    keep[[index[n] for n in suppressed]] = False
    return keep


def suppress_tags(scores: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``scores (..., J)`` with the tags where ``keep (J,)`` is False set to 0."""
    return scores * keep.to(device=scores.device, dtype=scores.dtype)


def suppression_keep(value: str, label_names: Sequence[str]) -> Optional[torch.Tensor]:
    """bool ``(J,)`` keep-mask of a ``SUPPRESS_TAGS`` config value, or None for "" (no filter).

    Args:
        value: "" (none), "default" (:data:`NON_OBJECT_TAGS_FILE`) or a list file's path.
        label_names: the tagger's J label names.
    """
    if not value:
        return None
    path = NON_OBJECT_TAGS_FILE if value == "default" else value
    return keep_tags(label_names, read_tag_list(path), source=path)


def top_k_scores(scores: torch.Tensor, top_k: int) -> torch.Tensor:
    """``scores (..., J)`` with all but each row's ``top_k`` highest set to 0 (0: keep all)."""
    if top_k and top_k < scores.shape[-1]:
        top = scores.topk(top_k, dim=-1)
        scores = torch.zeros_like(scores).scatter_(-1, top.indices, top.values)
    return scores


def tag_text_logits(
    scores: torch.Tensor,
    label_embeds: torch.Tensor,
    class_embeds: torch.Tensor,
    top_k: int,
    logit_scale: float,
) -> torch.Tensor:
    """Tag scores -> class logits through the text space.

    ``logit_scale * cos(normalise(sum_j s(j) * text(label_j)), text(class_k))`` over the ``top_k``
    highest tags (0: all); a row whose kept scores are all 0 gives logits 0 (uniform).

    Args:
        scores: ``(..., J)`` non-negative tag scores.
        label_embeds: ``(J, E)`` L2-normalised tag-name embeddings.
        class_embeds: ``(K, E)`` L2-normalised class embeddings.
    Returns:
        ``(..., K)`` logits.
    """
    scores = top_k_scores(scores, top_k)
    sound = F.normalize(scores @ label_embeds.to(scores), dim=-1)  # (..., E)
    return logit_scale * sound @ class_embeds.to(scores).t()


def per_query_second_weights(
    mask_probs: torch.Tensor, mode: str = "mass", eps: float = 1e-6
) -> torch.Tensor:
    """How much each second counts for each query: its mask's presence per frame.

    Args:
        mask_probs: ``(Q, T, H, W)`` mask probabilities.
        mode: "mass" (sum of the frame's mask probabilities) or "max" (their maximum).
        eps: a query whose total presence is below this gets ``1 / T`` everywhere (the clip mean).
    Returns:
        ``(Q, T)`` weights, each row summing to 1.
    """
    if mask_probs.dim() != 4:
        raise ValueError(f"mask_probs must be (Q, T, H, W), got {tuple(mask_probs.shape)}")
    flat = mask_probs.float().flatten(2)
    if mode == "mass":
        presence = flat.sum(-1)
    elif mode == "max":
        presence = flat.amax(-1)
    else:
        raise ValueError(f"per-second weight mode must be 'mass' or 'max', got {mode!r}")
    total = presence.sum(1, keepdim=True)
    uniform = torch.full_like(presence, 1.0 / presence.shape[1])
    return torch.where(total > eps, presence / total.clamp(min=eps), uniform)


def per_query_logits(second_logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``(T, K)`` logits of each second and ``(Q, T)`` weights -> ``(Q, K)`` weighted sums."""
    if second_logits.shape[0] != weights.shape[1]:
        raise ValueError(
            f"{second_logits.shape[0]} seconds of logits for weights over {weights.shape[1]}"
        )
    return weights.to(second_logits) @ second_logits


def query_sound_logits(
    second_logits: torch.Tensor,
    num_queries: int,
    seconds: str = "clip_mean",
    mask_probs: Optional[torch.Tensor] = None,
    second_weights: str = "mass",
) -> torch.Tensor:
    """``(Q, K)`` sound logits of each query from the seconds' logits ``(T, K)``.

    Args:
        seconds: "clip_mean" (every query gets the mean over the T seconds) or "query_seconds"
            (weights from ``mask_probs (Q, T, H, W)`` by :func:`per_query_second_weights`).
    """
    if seconds == "clip_mean":
        return second_logits.mean(0, keepdim=True).expand(num_queries, -1)
    if seconds != "query_seconds":
        raise ValueError(f"SECONDS must be 'clip_mean' or 'query_seconds', got {seconds!r}")
    if mask_probs is None or mask_probs.shape[0] != num_queries:
        raise ValueError(f"query_seconds needs mask_probs of {num_queries} queries (Q, T, H, W)")
    weights = per_query_second_weights(mask_probs, second_weights).to(second_logits.device)
    return per_query_logits(second_logits, weights)
