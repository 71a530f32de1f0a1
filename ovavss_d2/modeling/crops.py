"""Boxes from masks, box margins, crops, masked crops and mask pooling: the one implementation that
every crop site uses (the TPAVI baseline's crop branch, CLIP's and the ImageNet tags' "crop" and
"mask_pool" modes).

Shape letters: ``M`` masks / crops, ``N`` frames, ``B`` images, ``Q`` masks per image, ``C``
channels, ``H x W`` image size, ``h x w`` feature-map size, ``S`` crop side.

Boxes are float ``(x0, y0, x1, y1)`` in pixels with exclusive ends: pixel ``(x, y)`` covers
``[x, x + 1) x [y, y + 1)``, so a one-pixel mask at ``(x, y)`` has the box ``(x, y, x + 1, y + 1)``.
Crops sample these pixel borders exactly (``roi_align`` with ``aligned=True``).

Margin convention (every ``margin`` argument here): each side of a box moves outwards by
``margin`` times the box's extent along that side's axis (its width for the left and right sides,
its height for the top and bottom). A square box first becomes the square of the box's longer side
around the same centre, so its sides move by ``margin`` times that longer side. ``margin = 0.1``
makes a box 1.2 times as large along each axis; 0 keeps the tight box.
"""

from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

__all__ = ["boxes_from_masks", "expand_boxes", "cut_crops", "masked_crops", "mask_pool"]


def boxes_from_masks(masks: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Tight boxes ``(..., 4)`` of bool masks ``(..., H, W)`` (0 if empty), ``nonempty (...)``."""
    rows = masks.any(dim=-1)  # (..., H)
    cols = masks.any(dim=-2)  # (..., W)
    nonempty = rows.any(dim=-1)

    def span(hits: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        size = hits.shape[-1]
        first = hits.float().argmax(dim=-1)  # first True (0 when none)
        last = size - 1 - hits.flip(-1).float().argmax(dim=-1)
        return first, last + 1

    y0, y1 = span(rows)
    x0, x1 = span(cols)
    boxes = torch.stack([x0, y0, x1, y1], dim=-1).float() * nonempty[..., None]
    return boxes, nonempty


def expand_boxes(
    boxes: torch.Tensor,
    margin: float,
    *,
    square: bool = False,
    clip_to: Optional[Tuple[int, int]] = None,
) -> torch.Tensor:
    """Boxes ``(..., 4)`` grown by ``margin``, made square first, clipped to ``clip_to = (H, W)``.

    ``square`` and ``clip_to`` are optional; ``margin`` follows the module's convention.
    """
    if square:
        centre = (boxes[..., :2] + boxes[..., 2:]) / 2  # (..., 2) cx, cy
        side = (boxes[..., 2:] - boxes[..., :2]).amax(dim=-1, keepdim=True)  # (..., 1)
        half = side * (0.5 + margin)
        boxes = torch.cat([centre - half, centre + half], dim=-1)
    else:
        size = boxes[..., 2:] - boxes[..., :2]  # (..., 2) w, h
        size = torch.cat([size, size], dim=-1)  # (..., 4) w, h, w, h
        sign = torch.tensor([-1.0, -1.0, 1.0, 1.0], dtype=boxes.dtype, device=boxes.device)
        boxes = boxes + margin * size * sign
    if clip_to is not None:
        h, w = clip_to
        limit = torch.tensor([w, h, w, h], dtype=boxes.dtype, device=boxes.device)
        boxes = torch.minimum(boxes.clamp(min=0), limit)
    return boxes


def cut_crops(
    images: torch.Tensor,
    boxes: torch.Tensor,
    image_index: torch.Tensor,
    size: int,
    *,
    aligned: bool = True,
) -> torch.Tensor:
    """Bilinear ``S x S`` crops ``(M, C, S, S)`` of boxes ``(M, 4)`` in images ``(N, C, H, W)``.

    ``image_index (M,)`` names each box's image; the aspect ratio is not kept; outside the image
    reads 0; 2 x 2 samples per output pixel. ``aligned=False`` is torchvision's legacy sampling,
    half a pixel down-right of the box.
    """
    rois = torch.cat([image_index.to(boxes.dtype)[:, None], boxes], dim=1).to(images.dtype)
    return roi_align(
        images, rois, output_size=(size, size), spatial_scale=1.0, sampling_ratio=2, aligned=aligned
    )


def masked_crops(
    images: torch.Tensor,
    masks: torch.Tensor,
    size: int,
    margin: float,
    *,
    fill: Union[float, torch.Tensor] = 0.0,
    aligned: bool = True,
) -> torch.Tensor:
    """Square crops ``(M, C, S, S)`` of images ``(M, C, H, W)`` around bool masks ``(M, H, W)``.

    Each box is the (non-empty) mask's tight box made square and grown by ``margin`` (module
    convention).
    Pixels outside the mask and outside the image read ``fill`` (a number or a tensor broadcast to
    ``(M, C, 1, 1)``, e.g. a per-channel value).
    """
    if masks.shape[0] == 0:
        return images.new_zeros(0, images.shape[1], size, size)
    boxes = expand_boxes(boxes_from_masks(masks)[0], margin, square=True)
    index = torch.arange(len(masks), device=masks.device)
    masked = torch.where(masks[:, None], images, fill)
    return cut_crops(masked - fill, boxes, index, size, aligned=aligned) + fill


def mask_pool(
    features: torch.Tensor,
    masks: torch.Tensor,
    *,
    resize: str = "bilinear",
    eps: float = 1e-6,
    clamp_mass: bool = False,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mask-weighted means ``(B, Q, C)`` of features ``(B, C, h, w)``, and mask masses ``(B, Q)``.

    ``masks (B, Q, H, W)`` are weights in [0, 1] (probabilities or binary masks).

    Masks of another size are resized to ``h x w``: ``resize`` "bilinear"
    (``align_corners=False``) or "area" (adaptive average pooling). The mean is
    ``sum(mask * feature) / (mass + eps)``, or ``/ max(mass, eps)`` with ``clamp_mass``, where
    ``mass = sum(mask)`` at ``h x w``; an empty mask pools to zeros.
    """
    if masks.shape[-2:] != features.shape[-2:]:
        if resize == "bilinear":
            masks = F.interpolate(
                masks, size=features.shape[-2:], mode="bilinear", align_corners=False
            )
        elif resize == "area":
            masks = F.adaptive_avg_pool2d(masks, features.shape[-2:])
        else:
            raise ValueError(f"resize must be 'bilinear' or 'area', got {resize!r}")
    masks = masks.to(features.dtype)
    pooled = torch.einsum("bqhw,bchw->bqc", masks, features)  # (B, Q, C)
    mass = masks.sum(dim=(-2, -1))  # (B, Q)
    denominator = mass.clamp(min=eps) if clamp_mass else mass + eps
    return pooled / denominator.unsqueeze(-1), mass
