"""Sound evidence per object: the tags of each second shared out over the queries that are present,
by how well each tag agrees with what the query looks like.

Shape letters: Q queries, T frames (one second of audio each), N top tags of a second, E
text-embedding size, K classes of the vocabulary.

Without this, every query of a clip with several sources hears the whole mixture: a dog's mask and
a violin's mask get the same sound. Here each query has a visual position in the text space,
``v_q = normalise(sum_k p_vis(q, k) * text(class_k))`` (:func:`visual_text_embeds`, ``p_vis`` a
visual source's class distribution), and each of a second's top tags ``n`` is shared among the
queries present in that second by a softmax of their agreement with it,
``a(q, t, n) = softmax_q(scale * cos(v_q, text(tag_n)))`` (:func:`tag_assignment`). A query's sound
in second ``t`` is then ``normalise(sum_n s(t, n) * a(q, t, n) * text(tag_n))``
(:func:`assigned_sound_embeds`): a mask that looks like a dog takes the dog-like tags. With one
query present the weights are 1 and nothing changes.
"""

import torch
import torch.nn.functional as F

__all__ = ["assigned_sound_embeds", "tag_assignment", "visual_text_embeds"]


def visual_text_embeds(p_vis: torch.Tensor, class_embeds: torch.Tensor) -> torch.Tensor:
    """``(Q, E)`` unit vectors ``normalise(p_vis (Q, K) @ class_embeds (K, E))``."""
    return F.normalize(p_vis.float() @ class_embeds.float().to(p_vis.device), dim=-1)


def tag_assignment(
    visual: torch.Tensor, tag_embeds: torch.Tensor, present: torch.Tensor, scale: float
) -> torch.Tensor:
    """How much of each tag of each second goes to each query.

    Args:
        visual: ``(Q, E)`` unit visual positions of the queries.
        tag_embeds: ``(T, N, E)`` unit text embeddings of each second's top tags.
        present: bool ``(Q, T)``: the queries present in each second.
        scale: softmax sharpness (cosine units); 0 shares every tag equally.
    Returns:
        ``(Q, T, N)``: a softmax over the present queries of ``scale * cos(v_q, tag)``; a query
        absent from a second gets 1 there (it is weighed by its second weights, not shared).
    """
    if present.shape != (visual.shape[0], tag_embeds.shape[0]):
        raise ValueError(
            f"present must be (Q={visual.shape[0]}, T={tag_embeds.shape[0]}), got "
            f"{tuple(present.shape)}"
        )
    agree = scale * torch.einsum("qe,tne->qtn", visual.float(), tag_embeds.float())
    agree = agree.masked_fill(~present[..., None], -float("inf"))
    share = agree.softmax(0).nan_to_num(0.0)  # seconds where nobody is present: nan -> 0
    return torch.where(present[..., None], share, torch.ones_like(share))


def assigned_sound_embeds(
    tag_scores: torch.Tensor, tag_embeds: torch.Tensor, assignment: torch.Tensor
) -> torch.Tensor:
    """``(Q, T, E)`` unit sound embeddings of each query in each second (0 where no tag scores).

    Args:
        tag_scores: ``(T, N)`` non-negative scores of each second's top tags.
        tag_embeds: ``(T, N, E)`` their text embeddings.
        assignment: ``(Q, T, N)`` from :func:`tag_assignment`.
    """
    weights = assignment * tag_scores[None].to(assignment)  # (Q, T, N)
    return F.normalize(torch.einsum("qtn,tne->qte", weights, tag_embeds.to(weights)), dim=-1)
