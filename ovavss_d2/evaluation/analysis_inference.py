"""Running a model for the error analysis (``error_analysis.py``): its predictions of each clip
and its class ensemble's names of the clip's ground-truth masks.

Shape letters: Q queries, T frames, K classes of the vocabulary, O ground-truth objects, H x W the
resized frame.
"""

from typing import Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..modeling.class_sources import ClipQueries, combine_evidence, objectness_from_logits
from ..modeling.crops import mask_pool
from ..modeling.meta_arch.inference import resized_mask_probs
from .error_analysis import ClipPrediction, annotated_labels

__all__ = ["gt_object_masks", "name_ground_truth_masks", "predict_clips"]


def gt_object_masks(
    labels: Dict[int, np.ndarray], num_frames: int, num_classes: int, size: Tuple[int, int]
) -> Tuple[torch.Tensor, List[int]]:
    """Float ``(O, T, H, W)`` masks of the classes in ``labels`` resized (nearest) to ``size``,
    and their label indices; frames without a label are empty."""
    present = sorted({int(c) for lab in labels.values() for c in np.unique(lab)} - {0})
    ids = [c for c in present if c < num_classes]
    masks = torch.zeros(len(ids), num_frames, *size)
    for t, label in labels.items():
        lab = torch.from_numpy(label)[None, None].float()
        lab = F.interpolate(lab, size=tuple(size), mode="nearest")[0, 0]
        for o, c in enumerate(ids):
            masks[o, t] = (lab == c).float()
    return masks, ids


def name_ground_truth_masks(
    model, outputs: Dict, b: int, x: Dict, record: Dict, masks: torch.Tensor
) -> torch.Tensor:
    """The model's class ensemble on ground-truth masks instead of its query masks.

    Every object becomes a query: sources that read masks (image and sound tags) see its
    ground-truth mask; sources that read query embeddings (the learned classifier) see the
    model's query embeddings and objectness pooled over that mask: each pixel is shared among the
    queries in proportion to ``p_fg(q) * m_q(x)`` (the weights of the model's semantic
    inference) and ``crops.mask_pool`` averages these shares over the object's pixels.

    Args:
        outputs: the decoder outputs of the batch; ``b`` the clip's index in it; ``x`` its mapper
            dict; ``record`` its :meth:`OVAVSS.class_evidence` record.
        masks: float ``(O, T, H, W)`` at the resized frame size.
    Returns:
        ``(O, K)`` (or ``(O, T, K)``) class distributions.
    """
    probs = resized_mask_probs(record["mask_logits"], record["padded_size"], record["image_size"])
    share = record["p_fg"].to(probs)[:, None, None, None] * probs  # (Q, T, H, W)
    share = share / share.sum(0, keepdim=True).clamp(min=1e-6)
    masks = masks.to(probs)
    pooled, mass = mask_pool(share.transpose(0, 1), masks.transpose(0, 1))  # (T, O, Q), (T, O)
    weights = (pooled * mass[..., None]).sum(0) / mass.sum(0)[:, None].clamp(min=1e-6)  # (O, Q)
    p_obj = weights @ objectness_from_logits(outputs["pred_objectness"][b]).to(weights)  # (O,)
    p_obj = p_obj.clamp(1e-6, 1 - 1e-6)
    prompts = model._active_vocabulary()
    clip = ClipQueries(
        pred_embeds=weights @ outputs["pred_embeds"][b].to(weights),
        pred_objectness=torch.stack([p_obj.log(), (1 - p_obj).log()], -1),
        mask_probs=lambda: masks,
        frames=x["images"].to(probs.device),
        audio_embeds=outputs["audio_embeds"][b],
        vocabulary=prompts,
        class_embeds=model.text_classifier.get(prompts).to(probs.device),
        is_base=record["is_base"],
    )
    evidence = {name: source(clip) for name, source in model.class_sources.items()}
    return combine_evidence(evidence, model.source_weights, record["is_base"], model.base_bias)[1]


@torch.no_grad()
def predict_clips(model, batch: List[Dict], num_label_classes: int, ignore_label: int = 255):
    """Run the model once on a batch: per clip its :class:`ClipPrediction` (with the ensemble's
    names of the ground-truth masks) and its mapper dict without tensors."""
    images, audio, num_frames = model._preprocess(batch)
    outputs = model._decode(images.tensor, audio, num_frames)
    records = model._clip_evidence(outputs, batch, images, num_frames)
    out = []
    for b, (x, record) in enumerate(zip(batch, records)):
        labels = annotated_labels(x, num_label_classes, ignore_label)
        masks, ids = gt_object_masks(
            labels, num_frames, len(model.class_names) + 1, record["image_size"]
        )
        if ids:
            gt_probs = name_ground_truth_masks(model, outputs, b, x, record, masks)
        else:  # no object: the masks oracle predicts background everywhere
            gt_probs = torch.zeros(0, len(model.class_names))
        pred = ClipPrediction(
            scores=model.query_scores(record),
            mask_logits=record["mask_logits"],
            padded_size=record["padded_size"],
            image_size=record["image_size"],
            output_size=record["output_size"],
            gt_probs=gt_probs,
            gt_ids=ids,
        )
        out.append(({k: v for k, v in x.items() if not isinstance(v, torch.Tensor)}, pred))
    return out
