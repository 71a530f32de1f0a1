"""ovavss_d2.modeling.crops against hand-computed values: boxes, the margin convention, crops,
masked crops (fill, square box, sampling) and mask pooling (resize, empty masks).

The four crop sites it replaced (TPAVI boxes and crops, CLIP crops, ImageNet-tag crops, the two
mask poolings) were checked equal to it, bit for bit, on random inputs before they were removed.
"""

import pytest
import torch

from ovavss_d2.modeling.crops import (
    boxes_from_masks,
    cut_crops,
    expand_boxes,
    mask_pool,
    masked_crops,
)


def test_boxes_from_masks_hand_values():
    masks = torch.zeros(3, 6, 7, dtype=torch.bool)
    masks[0, 2:5, 1:4] = True  # rows 2-4, columns 1-3
    masks[1, 5, 6] = True  # one pixel in the corner
    boxes, nonempty = boxes_from_masks(masks)  # mask 2 stays empty
    assert boxes.tolist() == [[1, 2, 4, 5], [6, 5, 7, 6], [0, 0, 0, 0]]
    assert nonempty.tolist() == [True, True, False]


def test_boxes_from_masks_spans_separate_parts():
    masks = torch.zeros(1, 2, 8, 8, dtype=torch.bool)  # (N, T, H, W)
    masks[0, 1, 1, 1] = masks[0, 1, 6, 4] = True
    boxes, nonempty = boxes_from_masks(masks)
    assert boxes.shape == (1, 2, 4)
    assert boxes[0, 1].tolist() == [1, 1, 5, 7] and nonempty[0].tolist() == [False, True]


def test_cut_crops_reads_the_box():
    images = torch.zeros(2, 3, 20, 30)
    images[1, :, :, 15:] = 100.0  # right half of frame 1
    images[1, 0, 5:15, 20:26] = 7.0  # a 10 x 6 block in channel 0
    boxes = torch.tensor([[18.0, 2.0, 28.0, 18.0], [20.0, 5.0, 26.0, 15.0]])
    crops = cut_crops(images, boxes, torch.tensor([1, 1]), size=8)
    assert crops.shape == (2, 3, 8, 8)
    assert torch.allclose(crops[0, 1:], torch.tensor(100.0))  # inside the bright half
    assert torch.allclose(crops[1, 0, 2:-2, 2:-2], torch.tensor(7.0))  # inner samples of the block
    assert torch.allclose(crops[1, 1:], torch.tensor(100.0))
    assert cut_crops(images, boxes[:0], torch.zeros(0, dtype=torch.long), 8).shape == (0, 3, 8, 8)


def test_mask_pool_hand_computed():
    feats = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[10.0, 20.0], [30.0, 40.0]]]).unsqueeze(
        0
    )  # (1, 2, 2, 2)
    masks = torch.tensor(
        [[[1.0, 0.0], [0.0, 1.0]], [[0.5, 0.5], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]]
    )
    pooled = mask_pool(feats, masks.unsqueeze(0))[0]  # (1, 3, 2)
    torch.testing.assert_close(pooled[0, 0], torch.tensor([2.5, 25.0]))  # mean of pixels 0 and 3
    torch.testing.assert_close(pooled[0, 1], torch.tensor([1.5, 15.0]), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(pooled[0, 2], torch.zeros(2))  # empty mask: zeros, not NaN


def test_mask_pool_resizes_masks():
    feats = torch.arange(4.0).view(1, 1, 2, 2)
    masks = torch.ones(1, 1, 8, 8)
    torch.testing.assert_close(
        mask_pool(feats, masks)[0][0, 0], torch.tensor([1.5]), rtol=1e-5, atol=1e-5
    )


def test_masked_crops_zero_outside_mask_legacy_sampling():
    images = torch.ones(2, 3, 16, 16)
    masks = torch.zeros(2, 16, 16, dtype=torch.bool)
    masks[0, 4:12, 4:12] = True  # a square: with no margin the crop lies inside the mask
    masks[1, 0:4, 0:16] = True  # a wide strip at the top: its square box leaves the frame
    crops = masked_crops(images, masks, size=8, margin=0.0, aligned=False)  # the ImageNet tags'
    assert crops.shape == (2, 3, 8, 8)
    assert torch.allclose(crops[0, :, 2:6, 2:6], torch.ones(3, 4, 4))
    assert crops[1, :, 0].min() == 0.0  # above the frame: 0 (grey after normalisation)
    # the strip covers frame rows 0-3, the crop frame rows -6 .. 10 (2 rows per output row)
    assert crops[1, :, 3].min() > 0.9 and crops[1, :, 6:].max() == 0.0


def test_expand_boxes_rectangular_margin_and_clipping():
    boxes = torch.tensor([[2.0, 4.0, 6.0, 12.0]])  # 4 wide, 8 high
    # each side moves by 0.25 of the box's extent along its axis: 1 px in x, 2 px in y
    assert expand_boxes(boxes, 0.25).tolist() == [[1.0, 2.0, 7.0, 14.0]]
    assert expand_boxes(boxes, 0.0).tolist() == boxes.tolist()
    assert expand_boxes(boxes, 1.0, clip_to=(13, 9)).tolist() == [[0.0, 0.0, 9.0, 13.0]]
    nested = boxes.view(1, 1, 4).expand(2, 3, 4)  # any leading shape
    assert expand_boxes(nested, 0.25).shape == (2, 3, 4)


def test_expand_boxes_square():
    boxes = torch.tensor([[2.0, 4.0, 6.0, 12.0], [0.0, 0.0, 3.0, 1.0]])
    # the square of the longer side around the centre, each side moved by margin * that side
    assert expand_boxes(boxes, 0.0, square=True).tolist() == [
        [0.0, 4.0, 8.0, 12.0],
        [0.0, -1.0, 3.0, 2.0],
    ]
    assert expand_boxes(boxes[:1], 0.25, square=True).tolist() == [[-2.0, 2.0, 10.0, 14.0]]
    # CLIP's CROP_MARGIN c is the total growth of the side: margin c / 2 here (side 8 -> 12)
    assert expand_boxes(boxes[:1], 0.5 / 2, square=True).tolist() == [[-2.0, 2.0, 10.0, 14.0]]


def test_masked_crops_fill_and_aligned_sampling():
    images = torch.arange(3 * 8 * 8, dtype=torch.float32).view(1, 3, 8, 8)
    mask = torch.zeros(1, 8, 8, dtype=torch.bool)
    mask[0, 2:6, 2:6] = True
    fill = torch.tensor([-1.0, -2.0, -3.0]).view(1, 3, 1, 1)
    crops = masked_crops(images, mask, 4, 0.0, fill=fill)  # tight 4 x 4 box, 1 px per output
    # aligned sampling at 1 px per output pixel: 3/4 of the pixel and 1/8 of each neighbour
    # along each axis; the linear ramp inside the mask is kept exactly in the inner 2 x 2
    torch.testing.assert_close(crops[0, :, 1:3, 1:3], images[0, :, 3:5, 3:5])
    # the border row mixes the mask with the fill: 1/8 of the row above (fill) per axis
    row = 0.125 * fill[0, :, 0, 0] + 0.75 * images[0, :, 2, 3] + 0.125 * images[0, :, 3, 3]
    torch.testing.assert_close(crops[0, :, 0, 1], row)
    wide = masked_crops(images, mask, 4, 1.0, fill=fill)  # 12 x 12 box, 3 px per output pixel
    torch.testing.assert_close(wide[0, :, 0, 0], fill[0, :, 0, 0])  # outside the frame: fill
    assert masked_crops(images, mask[:0], 4, 0.0).shape == (0, 3, 4, 4)


def test_mask_pool_area_resize_and_clamped_mass():
    feats = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    masks = torch.zeros(1, 2, 4, 4)
    masks[0, 0, :2, :2] = 1.0  # the top-left cell only
    masks[0, 1, 0, 0] = 4e-7  # a faint mask: mass 1e-7 at the feature size
    pooled, mass = mask_pool(feats, masks, resize="area", clamp_mass=True)
    torch.testing.assert_close(mass, torch.tensor([[1.0, 1e-7]]))
    torch.testing.assert_close(pooled[0, 0], torch.tensor([1.0]))
    torch.testing.assert_close(pooled[0, 1], torch.tensor([0.1]))  # 1e-7 / max(1e-7, 1e-6)
    added, _ = mask_pool(feats, masks, resize="area")
    torch.testing.assert_close(added[0, 1], torch.tensor([1e-7 / 1.1e-6]))  # / (mass + eps)
    with pytest.raises(ValueError, match="resize"):
        mask_pool(feats, masks, resize="nearest")
