"""The ``clip_visual`` class source: CLIP's image tower on each query's masked frames (the
reference's open-vocabulary step). Keys: ``MODEL.CLASS_SOURCES.CLIP_VISUAL.*``.

Shapes: ``T`` frames, ``Q`` queries, ``K`` classes, ``E`` CLIP embedding size, ``H x W`` frame size,
``N`` (query, frame) pairs where a query is present.

Two modes:

* ``"crop"`` (the reference): for each query and frame where its mask is present, a square crop
  around the masked region, pixels outside the mask set to black, resized to CLIP's input size and
  encoded by CLIP. One CLIP forward per pair: accurate, slow (``N`` can reach ``Q * T``).
* ``"mask_pool"``: one CLIP forward per frame gives dense features (value path of the last
  attention layer, as in MaskCLIP / ClearCLIP), pooled inside each mask. ``T`` forwards instead of
  ``N``; coarser on small objects.

:class:`CLIPVisualClassifier` gives ``logit_scale * cosine`` with the class text embeddings,
averaged over the frames where the query is present; :class:`ClipVisualSource` turns them into a
softmax over the vocabulary. Needs a CLIP text encoder (the image tower comes with it).
"""

import math
from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from detectron2.config import configurable

from ..crops import mask_pool, masked_crops
from .base import ClassEvidence, ClassSource, ClipQueries, register_class_source
from .ensemble import embedding_logits

__all__ = ["CLIPVisualClassifier", "ClipVisualSource", "CLIP_PIXEL_MEAN", "CLIP_PIXEL_STD"]

# CLIP's image normalisation (RGB, on [0, 1] images).
CLIP_PIXEL_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_PIXEL_STD = (0.26862954, 0.26130258, 0.27577711)


class CLIPVisualClassifier:
    """Per-query CLIP logits for a clip. Inference only; holds no trainable state.

    Not an ``nn.Module`` on purpose: the shared frozen CLIP model stays out of the
    meta-architecture's
    state dict and optimizer.
    """

    MODES = ("crop", "mask_pool")

    def __init__(
        self,
        clip_model: torch.nn.Module,
        mode: str = "crop",
        *,
        crop_size: int = 0,
        crop_margin: float = 0.0,
        mask_threshold: float = 0.5,
        logit_scale: float = 100.0,
        image_format: str = "RGB",
        batch_size: int = 32,
    ):
        """
        Args:
            clip_model: a ``clip.model.CLIP`` (see ``modeling.text_encoder.clip_loader.load_clip``).
            mode: "crop" or "mask_pool".
            crop_size: side of the crops / of the frame fed for dense features; 0 -> the model's
                input resolution.
            crop_margin: margin around a mask's box, as a fraction of the box's longer side.
            mask_threshold: mask probability above which a pixel belongs to the mask; a query is
                present in a frame when any pixel does.
            logit_scale: logits = logit_scale * cosine; <= 0 -> CLIP's learned scale.
            image_format: "RGB" or "BGR", the channel order of the images passed in.
            batch_size: crops per CLIP forward.
        """
        if mode not in self.MODES:
            raise ValueError(f"CLIP visual mode must be one of {self.MODES}, got {mode!r}")
        if image_format not in ("RGB", "BGR"):
            raise ValueError(f"image_format must be RGB or BGR, got {image_format!r}")
        self.clip_model = clip_model
        self.mode = mode
        self.input_size = int(crop_size) or int(clip_model.visual.input_resolution)
        self.crop_margin = float(crop_margin)
        self.mask_threshold = float(mask_threshold)
        self.logit_scale = (
            float(logit_scale) if logit_scale > 0 else float(clip_model.logit_scale.exp().item())
        )
        self.image_format = image_format
        self.batch_size = max(int(batch_size), 1)

    @property
    def device(self) -> torch.device:
        """Device of the CLIP image tower."""
        return self.clip_model.visual.conv1.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """Parameter dtype of the CLIP image tower."""
        return self.clip_model.visual.conv1.weight.dtype

    def _normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8/float 0-255 ``(N, 3, h, w)`` in ``image_format`` -> CLIP-normalised float32."""
        x = images.float() / 255.0
        if self.image_format == "BGR":
            x = x.flip(1)
        mean = x.new_tensor(CLIP_PIXEL_MEAN).view(1, 3, 1, 1)
        std = x.new_tensor(CLIP_PIXEL_STD).view(1, 3, 1, 1)
        return (x - mean) / std

    @torch.no_grad()
    def __call__(
        self, images: torch.Tensor, masks: torch.Tensor, text_embeds: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            images: uint8 ``(T, 3, H, W)`` frames (0-255, ``image_format`` channel order).
            masks: ``(Q, T, h, w)`` mask probabilities in [0, 1]; resized to ``H x W`` if needed.
            text_embeds: ``(K, E)`` class text embeddings in CLIP's space.

        Returns:
            ``(logits, present)``: float32 ``(Q, K)`` logits averaged over the frames where the
            query is present (zeros for a query present nowhere), and bool ``(Q, T)``.
        """
        t, _, h, w = images.shape
        if masks.dim() != 4 or masks.shape[1] != t:
            raise ValueError(f"masks must be (Q, T={t}, h, w), got {tuple(masks.shape)}")
        images = images.to(self.device)
        masks = masks.to(self.device).float()
        if masks.shape[-2:] != (h, w):
            masks = F.interpolate(masks, size=(h, w), mode="bilinear", align_corners=False)
        binary = masks > self.mask_threshold  # (Q, T, H, W)
        present = binary.flatten(2).any(-1)  # (Q, T)
        q, k = masks.shape[0], text_embeds.shape[0]
        if self.mode == "crop":
            embeds = self._crop_embeddings(images, binary, present)  # (N, E)
            pair_logits = embedding_logits(embeds, text_embeds.to(self.device), self.logit_scale)
            per_frame = pair_logits.new_zeros(q, t, k)
            per_frame[present] = pair_logits  # (Q, T, K)
        else:
            dense = self.dense_features(images)  # (T, E, h', w')
            pooled, _ = mask_pool(dense, masks.transpose(0, 1))  # (T, Q, E)
            per_frame = embedding_logits(
                pooled.transpose(0, 1), text_embeds.to(self.device), self.logit_scale
            )
        weight = present.unsqueeze(-1).float()  # (Q, T, 1)
        logits = (per_frame * weight).sum(1) / weight.sum(1).clamp(min=1.0)  # (Q, K)
        return logits, present

    def _crop_embeddings(
        self, images: torch.Tensor, binary: torch.Tensor, present: torch.Tensor
    ) -> torch.Tensor:
        """CLIP embeddings ``(N, E)`` of masked square crops, one per present (query, frame)."""
        q_idx, t_idx = present.nonzero(as_tuple=True)  # N pairs, query-major order
        out = []
        norm = self._normalise(images)  # (T, 3, H, W)
        # Outside the mask is black: 0 in pixel space, i.e. -mean/std after normalisation.
        black = self._normalise(torch.zeros(1, 3, 1, 1, device=images.device))
        for i in range(0, len(q_idx), self.batch_size):
            qi, ti = q_idx[i : i + self.batch_size], t_idx[i : i + self.batch_size]
            # Square crops, black outside the mask and the frame. crop_margin is the total growth
            # of the square's side, i.e. half of it on each side in crops.py's margin convention.
            m = binary[qi, ti]  # (n, H, W)
            crops = masked_crops(norm[ti], m, self.input_size, self.crop_margin / 2, fill=black)
            out.append(self.clip_model.encode_image(crops.to(self.dtype)).float())
        if not out:
            return torch.zeros(0, self.clip_model.text_projection.shape[1], device=images.device)
        return torch.cat(out)

    def dense_features(self, images: torch.Tensor) -> torch.Tensor:
        """Dense CLIP embeddings of whole frames.

        Args:
            images: uint8 ``(T, 3, H, W)``; resized to ``input_size`` (square; the positional
                embeddings are interpolated when that differs from CLIP's own resolution).

        Returns:
            float32 ``(T, E, h', w')`` in CLIP's joint space (stride 32 for ResNets, patch size
            for ViTs).
        """
        x = self._normalise(images)
        x = F.interpolate(
            x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
        )
        visual = self.clip_model.visual
        x = x.to(self.dtype)
        if hasattr(visual, "attnpool"):
            return _resnet_dense(visual, x).float()
        return _vit_dense(visual, x).float()


def _resize_pos(pos: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """``(1 + g*g, C)`` positional embeddings (class token first) -> ``(h*w, C)`` for the grid."""
    grid = pos[1:]
    g = int(math.isqrt(grid.shape[0]))
    if (g, g) == tuple(size):
        return grid
    grid = grid.reshape(1, g, g, -1).permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=size, mode="bicubic", align_corners=False)
    return grid.permute(0, 2, 3, 1).reshape(size[0] * size[1], -1).to(pos.dtype)


def _vit_dense(visual, x: torch.Tensor) -> torch.Tensor:
    """ViT: patch tokens through all but the last block, then the last block's value path only
    (no query-key attention, residual or MLP: ClearCLIP), ``ln_post`` and ``proj``."""
    x = visual.conv1(x)  # (T, W, gh, gw)
    t, width, gh, gw = x.shape
    x = x.flatten(2).transpose(1, 2)  # (T, gh*gw, W)
    cls = visual.class_embedding.to(x.dtype).expand(t, 1, width)
    pos = torch.cat(
        [visual.positional_embedding[:1], _resize_pos(visual.positional_embedding, (gh, gw))]
    )
    x = visual.ln_pre(torch.cat([cls, x], dim=1) + pos.to(x.dtype))
    x = x.permute(1, 0, 2)  # (L, T, W)
    blocks = visual.transformer.resblocks
    for blk in blocks[:-1]:
        x = blk(x)
    last = blocks[-1]
    attn = last.attn
    v = F.linear(last.ln_1(x), attn.in_proj_weight[2 * width :], attn.in_proj_bias[2 * width :])
    x = attn.out_proj(v).permute(1, 0, 2)[:, 1:]  # (T, gh*gw, W), class token dropped
    x = visual.ln_post(x) @ visual.proj  # (T, gh*gw, E)
    return x.transpose(1, 2).reshape(t, -1, gh, gw)


def _resnet_dense(visual, x: torch.Tensor) -> torch.Tensor:
    """ModifiedResNet: the attention pool's value and output projections at every position
    (MaskCLIP)."""
    x = visual.relu1(visual.bn1(visual.conv1(x)))
    x = visual.relu2(visual.bn2(visual.conv2(x)))
    x = visual.avgpool(visual.relu3(visual.bn3(visual.conv3(x))))
    x = visual.layer4(visual.layer3(visual.layer2(visual.layer1(x))))  # (T, C, h, w)
    t, _, h, w = x.shape
    pool = visual.attnpool
    x = x.flatten(2).transpose(1, 2) + _resize_pos(pool.positional_embedding, (h, w)).to(x.dtype)
    x = pool.c_proj(pool.v_proj(x))  # (T, h*w, E)
    return x.transpose(1, 2).reshape(t, -1, h, w)


@register_class_source("clip_visual")
class ClipVisualSource(ClassSource):
    """CLIP's classification of the query masks (``MODEL.CLASS_SOURCES.CLIP_VISUAL.*``).

    Example::

        source = ClipVisualSource(CLIPVisualClassifier(text_encoder.clip_model, "crop"))
        evidence = source(clip)  # probs (Q, K); a query present nowhere gets the uniform
    """

    @configurable
    def __init__(self, classifier: CLIPVisualClassifier):
        """
        Args:
            classifier: CLIP's image tower with its mode, crop and logit settings.
        """
        self.classifier = classifier

    @classmethod
    def from_config(cls, cfg, context: Dict[str, object]) -> Dict[str, object]:
        """Read ``MODEL.CLASS_SOURCES.CLIP_VISUAL``; the image tower is the ``clip_model`` of
        ``context["text_encoder"]``; frames come in ``INPUT.FORMAT`` channel order."""
        c = cfg.MODEL.CLASS_SOURCES.CLIP_VISUAL
        clip_model = getattr(context["text_encoder"], "clip_model", None)
        if clip_model is None:
            raise ValueError(
                "class source 'clip_visual' needs a text encoder with a CLIP image tower "
                f"(MODEL.TEXT_ENCODER.NAME {cfg.MODEL.TEXT_ENCODER.NAME} has none); leave it out "
                "of MODEL.CLASS_SOURCES.NAMES"
            )
        classifier = CLIPVisualClassifier(
            clip_model,
            c.MODE,
            crop_size=c.CROP_SIZE,
            crop_margin=c.CROP_MARGIN,
            mask_threshold=c.MASK_THRESHOLD,
            logit_scale=c.LOGIT_SCALE,
            image_format=cfg.INPUT.FORMAT,
        )
        return {"classifier": classifier}

    def __call__(self, clip: ClipQueries) -> ClassEvidence:
        logits, _ = self.classifier(clip.frames, clip.mask_probs(), clip.class_embeds)  # (Q, K)
        return ClassEvidence(probs=logits.to(clip.pred_embeds.device).softmax(-1))
