"""TEMPORARY: crops.py against the old crop sites (exact equality). Removed with the old code."""

from types import SimpleNamespace

import pytest
import torch
from detectron2.structures import Instances
from torch import nn

from ovavss_d2.baselines.tpavi import crop_targets_from_batch
from ovavss_d2.baselines.tpavi.boxes import boxes_from_masks as old_boxes
from ovavss_d2.baselines.tpavi.crop_branch import cut_crops as old_cut
from ovavss_d2.modeling import crops
from ovavss_d2.modeling.class_sources.imagenet_classifier import mask_pooled as old_in_pool
from ovavss_d2.modeling.class_sources.imagenet_classifier import masked_crops as old_in_crops
from ovavss_d2.modeling.open_vocab.clip_visual import CLIPVisualClassifier
from ovavss_d2.modeling.open_vocab.ensemble import mask_pooling as old_clip_pool


def _masks(g, m, h, w, p=0.15):
    masks = torch.rand(m, h, w, generator=g) < p
    masks[:, h // 2, w // 3] = True  # non-empty
    return masks


def _blobs(g, m, h, w):
    """Masks of one random rectangle each (boxes of all sizes and positions, some at the border)."""
    out = torch.zeros(m, h, w, dtype=torch.bool)
    for i in range(m):
        y0, x0 = int(torch.randint(0, h, (1,), generator=g)), int(
            torch.randint(0, w, (1,), generator=g)
        )
        y1 = int(torch.randint(y0 + 1, h + 1, (1,), generator=g))
        x1 = int(torch.randint(x0 + 1, w + 1, (1,), generator=g))
        out[i, y0:y1, x0:x1] = True
    return out


@pytest.mark.parametrize("seed", range(4))
def test_boxes_and_tpavi_margin(seed):
    g = torch.Generator().manual_seed(seed)
    masks = torch.rand(3, 4, 23, 31, generator=g) < 0.02  # some empty
    masks[0, 1] = False
    b_old, n_old = old_boxes(masks)
    b_new, n_new = crops.boxes_from_masks(masks)
    assert torch.equal(b_old, b_new) and torch.equal(n_old, n_new)
    for margin in (0.0, 0.1, 0.25, 0.37):
        inst = Instances((23, 31))
        inst.gt_masks = masks
        inst.gt_classes = torch.arange(3)
        clip = {"instances": inst, "images": torch.zeros(4, 3, 23, 31)}
        t = crop_targets_from_batch([clip], min_area=1, margin=margin)
        exp = crops.expand_boxes(b_new, margin, clip_to=(23, 31))
        keep = masks.flatten(2).sum(-1) >= 1
        assert torch.equal(t.boxes, exp[keep]), margin


@pytest.mark.parametrize("seed", range(3))
def test_cut_crops(seed):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(3, 3, 20, 28, generator=g) * 255
    boxes = crops.expand_boxes(
        crops.boxes_from_masks(_blobs(g, 7, 20, 28))[0], 0.2, clip_to=(20, 28)
    )
    idx = torch.randint(0, 3, (7,), generator=g)
    assert torch.equal(old_cut(images, boxes, idx, 9), crops.cut_crops(images, boxes, idx, 9))


class _FakeCLIP(nn.Module):
    def __init__(self):
        super().__init__()
        self.visual = SimpleNamespace(conv1=nn.Conv2d(3, 1, 1), input_resolution=12)
        self.text_projection = torch.zeros(4, 5)
        self.logit_scale = torch.tensor(0.0)

    def encode_image(self, x):
        return x.flatten(1)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("margin", [0.0, 0.1, 0.3, 1.0 / 3])
def test_clip_crops(seed, margin):
    g = torch.Generator().manual_seed(seed)
    clf = CLIPVisualClassifier(_FakeCLIP(), "crop", crop_margin=margin, batch_size=3)
    t, q, h, w = 3, 4, 21, 26
    images = torch.randint(0, 256, (t, 3, h, w), generator=g, dtype=torch.uint8)
    binary = torch.cat([_blobs(g, q * t, h, w)[: q * t // 2], _masks(g, q * t - q * t // 2, h, w)])
    binary = binary.view(q, t, h, w)
    binary[1, 2] = False
    present = binary.flatten(2).any(-1)
    old = clf._crop_embeddings(images, binary, present)
    qi, ti = present.nonzero(as_tuple=True)
    norm = clf._normalise(images)
    black = clf._normalise(torch.zeros(1, 3, 1, 1))
    new = crops.masked_crops(norm[ti], binary[qi, ti], 12, margin / 2, fill=black)
    assert torch.equal(old, new.flatten(1))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("margin", [0.0, 0.1, 0.25])
def test_imagenet_crops(seed, margin):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(6, 3, 19, 24, generator=g)
    masks = torch.cat([_blobs(g, 3, 19, 24), _masks(g, 3, 19, 24)])
    old = old_in_crops(images, masks, 10, margin)
    new = crops.masked_crops(images, masks, 10, margin, aligned=False)
    assert torch.equal(old, new)
    assert old_in_crops(images, masks[:0], 10, margin).shape == new[:0].shape


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("size", [(6, 8), (24, 32), (25, 30)])
def test_mask_pooling(seed, size):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(3, 7, 6, 8, generator=g)
    masks = torch.rand(3, 5, *size, generator=g)
    masks[:, 1] = 0.0
    masks[:, 2] = (masks[:, 2] > 0.7).float()
    pooled, _ = crops.mask_pool(feats, masks)
    assert torch.equal(old_clip_pool(feats, masks), pooled)
    qt = masks.transpose(0, 1).contiguous()  # (Q, T, H, W) as the ImageNet site has them
    p_old, m_old = old_in_pool(feats, qt)
    p_new, m_new = crops.mask_pool(feats, qt.transpose(0, 1), resize="area", clamp_mass=True)
    assert torch.equal(p_old, p_new.transpose(0, 1)) and torch.equal(m_old, m_new.transpose(0, 1))
