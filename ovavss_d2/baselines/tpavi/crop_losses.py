"""The three crop losses and AVSBench's audio-visual matching regulariser, as pure functions.

Shape letters: ``R`` crops, ``E`` crop embedding size, ``K`` crop classes, ``B`` clips, ``N``
frames, ``D`` channels, ``H x W`` map size.

Every loss returns a scalar that stays attached to its inputs' graph, also when nothing
contributes (then it is an exact zero), so callers never special-case empty batches.
"""

from typing import Dict

import torch
import torch.nn.functional as F

__all__ = [
    "crop_classification_loss",
    "crop_pairwise_loss",
    "crop_audio_cosine_loss",
    "audio_visual_matching_loss",
]


def crop_classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each crop's class logits, over the crops of known class.

    Args:
        logits: ``(R, K)``.
        labels: ``(R,)`` long class ids, -1 for an unknown class (left out).
    """
    known = labels >= 0
    if not known.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[known], labels[known])


def crop_pairwise_loss(embeddings: torch.Tensor, object_index: torch.Tensor) -> torch.Tensor:
    """Pull together the crops of one object in different frames.

    For every object with at least two crops: the mean ``PairwiseDistance`` (L2) between the
    L2-normalised embeddings of all its pairs of crops; then the mean over those objects.
    Normalising first keeps the loss from being lowered by shrinking every embedding.

    Args:
        embeddings: ``(R, E)``.
        object_index: ``(R,)`` object of each crop.
    """
    emb = F.normalize(embeddings, dim=-1)
    i, j = torch.triu_indices(len(emb), len(emb), offset=1, device=emb.device)
    same = object_index[i] == object_index[j]
    if not same.any():
        return embeddings.sum() * 0.0
    i, j = i[same], j[same]
    dist = F.pairwise_distance(emb[i], emb[j])  # (P,)
    # mean over each object's pairs, then over objects
    objects, group = torch.unique(object_index[i], return_inverse=True)
    per_object = torch.zeros(len(objects), device=emb.device, dtype=dist.dtype).index_add(
        0, group, dist
    )
    pairs = torch.zeros_like(per_object).index_add(0, group, torch.ones_like(dist))
    return (per_object / pairs).mean()


def crop_audio_cosine_loss(
    crop_audio_space: torch.Tensor, clip_audio: torch.Tensor, clip_index: torch.Tensor
) -> torch.Tensor:
    """``1 - cos`` between each crop's embedding and its clip's mean audio embedding.

    Args:
        crop_audio_space: ``(R, D)`` crop embeddings projected to the audio space.
        clip_audio: ``(B, D)`` mean audio embedding of each clip (over its frames' seconds).
        clip_index: ``(R,)`` clip of each crop.
    """
    if len(crop_audio_space) == 0:
        return crop_audio_space.sum() * 0.0 + clip_audio.sum() * 0.0
    cos = F.cosine_similarity(crop_audio_space, clip_audio[clip_index], dim=-1)
    return (1.0 - cos).mean()


def audio_visual_matching_loss(
    fused: Dict[str, torch.Tensor], foreground: torch.Tensor, audio: torch.Tensor
) -> torch.Tensor:
    """AVSBench's audio-visual matching regulariser, averaged over levels.

    At each level, the TPAVI output averaged under the predicted sounding mask is compared with
    the frame's audio token: ``KL(softmax(a) || softmax(mean_hw(M * Z)))`` over channels, averaged
    over frames.

    Args:
        fused: ``{level: (N, D, H_k, W_k)}`` TPAVI outputs.
        foreground: ``(N, 1, H, W)`` predicted sounding probability (any resolution).
        audio: ``(N, D)`` each frame's audio token.
    """
    target = F.log_softmax(audio, dim=-1)
    losses = []
    for z in fused.values():
        mask = F.interpolate(foreground, size=z.shape[-2:], mode="bilinear", align_corners=False)
        pooled = (z * mask).mean(dim=(2, 3))  # (N, D)
        losses.append(
            F.kl_div(F.log_softmax(pooled, dim=-1), target, reduction="batchmean", log_target=True)
        )
    if not losses:
        return foreground.sum() * 0.0
    return torch.stack(losses).mean()
