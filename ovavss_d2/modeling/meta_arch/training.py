"""Training pieces of OV-AVSS built from the config: the set criterion with its matcher, and the
criterion targets of a batch.

Shape letters: N objects of a clip, T frames, Ta annotated frames of a clip, H x W a clip's frame
size, Hp x Wp the padded batch.
"""

from typing import Dict, List, Sequence, Tuple

import torch
from detectron2.config import CfgNode

from ...data.vocabulary import OUTSIDE_VOCABULARY, UNNAMED
from ..criterion import UNNAMED_LABEL, OVAVSSSetCriterion
from ..matcher import HungarianMatcher

__all__ = ["build_criterion", "prepare_targets", "weighted_losses"]


def build_criterion(cfg: CfgNode, num_classes: int) -> OVAVSSSetCriterion:
    """The set criterion (and its Hungarian matcher) of ``MODEL.OVAVSS.*`` over ``num_classes``
    training classes; its ``weight_dict`` weights the losses."""
    ov = cfg.MODEL.OVAVSS
    # The per-frame sounding loss exists only with its head (MODEL.OVAVSS.PER_FRAME_OBJECTNESS).
    frame_weight = ov.FRAME_OBJECTNESS_WEIGHT if ov.PER_FRAME_OBJECTNESS else 0.0
    weight_dict = {
        "loss_objectness": ov.OBJECTNESS_WEIGHT,
        "loss_class": ov.CLASS_WEIGHT,
        "loss_mask": ov.MASK_WEIGHT,
        "loss_dice": ov.DICE_WEIGHT,
    }
    if ov.PER_FRAME_OBJECTNESS:
        weight_dict["loss_frame_objectness"] = frame_weight
    if ov.DEEP_SUPERVISION:
        layer_weights = dict(weight_dict)
        for i in range(cfg.MODEL.TRANSFORMER_DECODER.DEC_LAYERS):
            weight_dict.update({f"{k}_{i}": v for k, v in layer_weights.items()})
    losses = [
        name
        for name, weight in (
            ("objectness", ov.OBJECTNESS_WEIGHT),
            ("labels", ov.CLASS_WEIGHT),
            ("masks", ov.MASK_WEIGHT + ov.DICE_WEIGHT),
            ("frame_objectness", frame_weight),
        )
        if weight > 0
    ]
    matcher = HungarianMatcher(
        cost_objectness=ov.OBJECTNESS_WEIGHT,
        cost_class=ov.CLASS_WEIGHT,
        cost_mask=ov.MASK_WEIGHT,
        cost_dice=ov.DICE_WEIGHT,
        num_points=ov.TRAIN_NUM_POINTS,
        cost_frame_objectness=ov.FRAME_OBJECTNESS_COST if ov.PER_FRAME_OBJECTNESS else 0.0,
    )
    criterion = OVAVSSSetCriterion(
        num_classes=num_classes,
        matcher=matcher,
        weight_dict=weight_dict,
        eos_coef=ov.NO_OBJECT_WEIGHT,
        losses=losses,
        num_points=ov.TRAIN_NUM_POINTS,
        oversample_ratio=ov.OVERSAMPLE_RATIO,
        importance_sample_ratio=ov.IMPORTANCE_SAMPLE_RATIO,
    )
    return criterion


def prepare_targets(
    batched_inputs: Sequence[Dict],
    dataset_to_train: torch.Tensor,
    train_keys: Sequence[str],
    padded_size: Tuple[int, int],
    num_frames: int,
    device: torch.device,
) -> List[Dict]:
    """Criterion targets: training-vocabulary labels, masks padded to the batch, annotated frames.

    Everything is checked and mapped on the host, then copied to ``device`` without blocking
    (labels and frame indices of the whole batch in one copy, masks one copy per clip): no
    host-device synchronisation.

    Args:
        batched_inputs: mapper dicts with ``instances`` (``gt_classes (N,)`` 0-based dataset ids,
            ``gt_masks (N, T, H, W)``, host tensors) and optionally ``annotated`` bool ``(T,)``.
        dataset_to_train: ``(num dataset classes,)`` host tensor, training index of each dataset
            class, -1 for classes outside the training vocabulary ``train_keys``, -2 for unnamed
            foreground classes (``data.vocabulary.UNNAMED``).
        padded_size: ``(Hp, Wp)``.
    Returns:
        per clip ``labels (N,)`` (training indices; ``UNNAMED_LABEL`` -1 for unnamed objects),
        ``masks (N, T, Hp, Wp)`` and ``frames (Ta,)`` (indices of the annotated frames) on
        ``device``, and ``annotated`` bool ``(T,)`` on the host.
    """
    pad_h, pad_w = padded_size
    labels, annotated = [], []
    for x in batched_inputs:
        classes = x["instances"].gt_classes.cpu()
        if classes.numel() and (classes.max() >= dataset_to_train.numel() or classes.min() < 0):
            raise ValueError(
                f"clip {x.get('clip_id', '?')}: class ids {classes.tolist()} outside the class "
                f"list of DATASETS.TRAIN ({dataset_to_train.numel()} classes)"
            )
        labels.append(dataset_to_train[classes])
        if (labels[-1] == OUTSIDE_VOCABULARY).any():
            outside = sorted(set(classes[labels[-1] == OUTSIDE_VOCABULARY].tolist()))
            raise ValueError(
                f"clip {x.get('clip_id', '?')}: dataset classes {outside} (0-based) are not in "
                f"the training vocabulary {train_keys}; train on base classes only or set "
                "MODEL.OVAVSS.TRAIN_VOCABULARY all"
            )
        labels[-1] = labels[-1].masked_fill(labels[-1] == UNNAMED, UNNAMED_LABEL)
        masks = x["instances"].gt_masks
        if masks.dim() != 4 or masks.shape[1] != num_frames:
            raise ValueError(
                f"gt_masks must be (N, T={num_frames}, H, W), got {tuple(masks.shape)}"
            )
        ann = x.get("annotated")
        ann = torch.ones(num_frames, dtype=torch.bool) if ann is None else torch.as_tensor(ann)
        annotated.append(ann.cpu().bool())
    frames = [a.nonzero(as_tuple=True)[0] for a in annotated]
    # (sum N + sum Ta,): labels then frame indices of every clip, one copy.
    indices = torch.cat(labels + frames).to(device, non_blocking=True)
    indices = indices.split([len(t) for t in labels + frames])
    targets = []
    for b, x in enumerate(batched_inputs):
        masks = x["instances"].gt_masks
        padded = torch.zeros(
            (masks.shape[0], num_frames, pad_h, pad_w), dtype=masks.dtype, device=device
        )
        padded[..., : masks.shape[-2], : masks.shape[-1]] = masks.to(device, non_blocking=True)
        targets.append(
            {
                "labels": indices[b],
                "masks": padded,
                "annotated": annotated[b],
                "frames": indices[len(labels) + b],
            }
        )
    return targets


def weighted_losses(
    criterion: OVAVSSSetCriterion, outputs: Dict, targets: List[Dict], deep_supervision: bool
) -> Dict[str, torch.Tensor]:
    """The criterion's losses times their ``weight_dict`` weights (those of weight 0 left out);
    without ``deep_supervision`` the decoder's ``aux_outputs`` take no part."""
    if not deep_supervision:
        outputs = {k: v for k, v in outputs.items() if k != "aux_outputs"}
    losses = criterion(outputs, targets)
    weights = criterion.weight_dict
    return {k: v * weights[k] for k, v in losses.items() if weights.get(k, 0) > 0}
