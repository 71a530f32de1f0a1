"""The AVSBench TPAVI baseline (``MODEL.META_ARCHITECTURE: TPAVIAVS``), with optional crop losses.

Shape letters: B clips, T frames of a clip, N frames of a batch (clip after clip), C audio-embedding
size, D decoder channels, K classes (without background), H x W padded input size, h x w = H/s x W/s
at the decoder's finest stride s, H0 x W0 original frame size, R crops, S crop side.

Pipeline: backbone on the N frames; frozen audio encoder on the N one-second log-mel patches, then
a learned linear projection to D ("audio tokens"); the FPN-like :class:`TPAVIDecoder`, whose TPAVI
modules let every pixel of a clip's frames attend to that clip's T audio tokens; per-frame logits
(1 for binary sounding-object segmentation, K+1 for semantic). docs/TPAVI.md describes the model,
the losses and the configs.
"""

import logging
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.data import MetadataCatalog
from detectron2.modeling import META_ARCH_REGISTRY, Backbone, build_backbone
from detectron2.modeling.postprocessing import sem_seg_postprocess
from detectron2.structures import ImageList
from torch import nn

from ...data.class_lists import ClassList, load_class_list
from ...modeling.audio_encoder import build_audio_encoder
from ...modeling.crops import cut_crops
from .boxes import crop_targets_from_batch
from .crop_branch import CropEncoder, CropHead, build_crop_encoder
from .crop_losses import (
    audio_visual_matching_loss,
    crop_audio_cosine_loss,
    crop_classification_loss,
    crop_pairwise_loss,
)
from .fpn_decoder import TPAVIDecoder
from .tpavi import pad_clip_tokens

__all__ = ["TPAVIAVS"]

logger = logging.getLogger(__name__)

TASKS = ("binary", "semantic")


@META_ARCH_REGISTRY.register()
class TPAVIAVS(nn.Module):
    """AVSBench's TPAVI model for binary (S4 / MS3) or semantic (AVSS) audio-visual segmentation.

    Losses: ``loss_mask`` (binary cross-entropy of the sounding logit, or K+1-way cross-entropy),
    ``loss_avm`` (audio-visual matching regulariser) and the crop losses ``loss_crop_ce``,
    ``loss_crop_pairwise``, ``loss_crop_audio_cos``. A loss appears in the dict only when its
    weight is > 0; the values are already weighted.
    """

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        audio_encoder: nn.Module,
        decoder: TPAVIDecoder,
        audio_proj: Optional[nn.Module] = None,
        task: str,
        num_classes: int,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        image_format: str = "RGB",
        size_divisibility: int = 32,
        ignore_label: int = 255,
        mask_weight: float = 1.0,
        avm_weight: float = 0.0,
        crop_head: Optional[CropHead] = None,
        crop_encoder: Optional[CropEncoder] = None,
        crop_ce_weight: float = 0.0,
        crop_pairwise_weight: float = 0.0,
        crop_audio_cos_weight: float = 0.0,
        crop_size: int = 224,
        crop_class_ids: Optional[Dict[str, int]] = None,
        crop_min_area: int = 16,
        crop_margin: float = 0.0,
        crop_max: int = 32,
    ):
        """
        Args:
            backbone: a Detectron2 backbone giving the decoder's ``in_features``.
            audio_encoder: ``(N, 1, L, M) -> (N, C)`` with ``output_dim`` C.
            decoder: the FPN-like decoder; its ``conv_dim`` D is the audio-token size.
            audio_proj: ``(N, C) -> (N, D)`` projection of the audio embeddings to audio tokens;
                None: a new ``nn.Linear(C, D)``.
            task: "binary" (one sounding logit) or "semantic" (K+1 logits, background first).
            num_classes: K for "semantic" (ignored for "binary").
            pixel_mean, pixel_std: input normalisation in ``image_format`` channel order.
            image_format: "RGB" or "BGR" (the separate crop CNN always gets RGB).
            size_divisibility: frames are padded to a multiple of it.
            ignore_label: label value that no loss counts.
            mask_weight, avm_weight: weights of the segmentation loss and of the AVM regulariser.
            crop_head: the crop branch's head; None disables every crop loss.
            crop_encoder: the separate crop CNN; None with a ``crop_head`` uses ``backbone`` pooled
                at its coarsest output.
            crop_ce_weight, crop_pairwise_weight, crop_audio_cos_weight: crop loss weights.
            crop_size: S.
            crop_class_ids: class key -> crop-head class, for binary datasets (see
                ``crop_class_ids`` in ``ovavss_d2.baselines.tpavi.boxes``).
            crop_min_area, crop_margin, crop_max: see ``crop_targets_from_batch``.
        """
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"MODEL.TPAVI.TASK must be one of {TASKS}, got {task!r}")
        if task == "semantic" and num_classes <= 0:
            raise ValueError(
                "a semantic TPAVI model needs num_classes > 0 (MODEL.TPAVI.NUM_CLASSES)"
            )
        crop_weights = (crop_ce_weight, crop_pairwise_weight, crop_audio_cos_weight)
        if any(w > 0 for w in crop_weights) and crop_head is None:
            raise ValueError("crop loss weights > 0 need a crop_head")
        if crop_ce_weight > 0 and (crop_head is None or crop_head.classifier is None):
            raise ValueError("crop_ce_weight > 0 needs a crop head with a classifier")
        if crop_audio_cos_weight > 0 and (crop_head is None or crop_head.to_audio is None):
            raise ValueError("crop_audio_cos_weight > 0 needs a crop head with an audio projection")
        self.backbone = backbone
        self.audio_encoder = audio_encoder
        self.audio_proj = audio_proj or nn.Linear(audio_encoder.output_dim, decoder.conv_dim)
        self.decoder = decoder
        self.task = task
        self.num_classes = num_classes if task == "semantic" else 1
        self.image_format = image_format
        self.size_divisibility = size_divisibility
        self.ignore_label = ignore_label
        self.mask_weight = mask_weight
        self.avm_weight = avm_weight
        self.crop_head = crop_head
        self.crop_encoder = crop_encoder
        self.crop_ce_weight = crop_ce_weight
        self.crop_pairwise_weight = crop_pairwise_weight
        self.crop_audio_cos_weight = crop_audio_cos_weight
        self.crop_size = crop_size
        self.crop_class_ids = dict(crop_class_ids) if crop_class_ids else None
        self.crop_min_area = crop_min_area
        self.crop_margin = crop_margin
        self.crop_max = crop_max
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @classmethod
    def from_config(cls, cfg) -> dict:
        t = cfg.MODEL.TPAVI
        c = t.CROP_LOSS
        # Build order matters for reproducibility: the crop branch comes last, so a config with
        # crop losses initialises every other part exactly as the same config without them.
        backbone = build_backbone(cfg)
        audio_encoder = build_audio_encoder(cfg)
        audio_proj = nn.Linear(audio_encoder.output_dim, t.CONV_DIM)
        meta = MetadataCatalog.get(cfg.DATASETS.TRAIN[0]) if len(cfg.DATASETS.TRAIN) else None
        class_list = None
        if meta is not None and getattr(meta, "class_list_file", ""):
            class_list = load_class_list(meta.class_list_file)

        num_classes = t.NUM_CLASSES
        if t.TASK == "semantic" and num_classes <= 0:
            if class_list is None:
                raise ValueError(
                    "MODEL.TPAVI.NUM_CLASSES is 0 and DATASETS.TRAIN[0] has no class list"
                )
            num_classes = len(class_list) - 1
        decoder = TPAVIDecoder(
            backbone.output_shape(),
            in_features=t.IN_FEATURES,
            tpavi_stages=t.STAGES,
            conv_dim=t.CONV_DIM,
            num_outputs=num_classes + 1 if t.TASK == "semantic" else 1,
            inter_dim=t.INTER_DIM,
            attention=t.ATTENTION,
            norm=t.NORM,
        )

        crop_encoder, crop_head, class_ids = _build_crop_branch(cfg, backbone, class_list)
        return {
            "backbone": backbone,
            "audio_encoder": audio_encoder,
            "decoder": decoder,
            "audio_proj": audio_proj,
            "task": t.TASK,
            "num_classes": num_classes,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "image_format": cfg.INPUT.FORMAT,
            "size_divisibility": max(cfg.INPUT.SIZE_DIVISIBILITY, backbone.size_divisibility),
            "ignore_label": getattr(meta, "ignore_label", 255) if meta is not None else 255,
            "mask_weight": t.MASK_WEIGHT,
            "avm_weight": t.AVM_WEIGHT,
            "crop_head": crop_head,
            "crop_encoder": crop_encoder,
            "crop_ce_weight": c.CE_WEIGHT,
            "crop_pairwise_weight": c.PAIRWISE_WEIGHT,
            "crop_audio_cos_weight": c.AUDIO_COS_WEIGHT,
            "crop_size": c.CROP_SIZE,
            "crop_class_ids": class_ids,
            "crop_min_area": c.MIN_MASK_AREA,
            "crop_margin": c.BOX_MARGIN,
            "crop_max": c.MAX_CROPS,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def set_vocabulary(self, names: Sequence) -> None:
        """TPAVI is closed-set: a semantic model accepts only a vocabulary of its own K classes.

        Args:
            names: K entries (class keys or synonym tuples, as ``prompt_names[1:]``), in the order
                of the training class list. A binary model accepts any vocabulary.
        """
        if self.task == "binary":
            return
        if len(names) != self.num_classes:
            raise ValueError(
                f"TPAVIAVS is a closed-set model of {self.num_classes} classes; it cannot switch "
                f"to a vocabulary of {len(names)} classes"
            )

    def forward(self, batched_inputs: List[dict]):
        """
        Args:
            batched_inputs: B mapper dicts (docs/DESIGN.md), each with ``images`` uint8
                ``(T, 3, H, W)`` and ``audio`` ``(T, 1, L, M)``; training also reads ``sem_seg``
                ``(T, H, W)`` and, for the crop losses, ``instances`` (``gt_classes``,
                ``gt_masks (N_obj, T, H, W)``), ``binary`` and ``class_names``. Clips may have
                different T and frame sizes.

        Returns:
            training: a dict of weighted losses (see the class docstring).
            inference: per clip, a list of T dicts ``{"sem_seg": (C, H0, W0)}`` of probabilities at
            the frame's original size (``height``/``width`` of the dict, else the input size):
            C = 2 (background, sounding) for binary, K+1 for semantic.
        """
        frames_per_clip = [int(x["images"].shape[0]) for x in batched_inputs]
        # N frames (3, H, W), clip after clip
        raw = [f.to(self.device).float() for x in batched_inputs for f in x["images"]]
        images = ImageList.from_tensors(
            [(f - self.pixel_mean) / self.pixel_std for f in raw], self.size_divisibility
        )

        patches = torch.cat([x["audio"] for x in batched_inputs]).to(self.device)  # (N, 1, L, M)
        frame_audio = self.audio_proj(self.audio_encoder(patches))  # (N, C) -> (N, D)
        audio, audio_valid, clip_index = pad_clip_tokens(frame_audio, frames_per_clip)  # (B, T, D)

        features = self.backbone(images.tensor)
        low_res, fused = self.decoder(features, audio, clip_index, audio_valid)  # (N, K', h, w)
        logits = F.interpolate(
            low_res, size=images.tensor.shape[-2:], mode="bilinear", align_corners=False
        )

        if not self.training:
            return self._postprocess(logits, images.image_sizes, batched_inputs, frames_per_clip)

        losses = {"loss_mask": self.mask_weight * self._segmentation_loss(logits, batched_inputs)}
        if self.avm_weight > 0:
            foreground = self._foreground_probability(low_res)
            losses["loss_avm"] = self.avm_weight * audio_visual_matching_loss(
                fused, foreground, frame_audio
            )
        if self.crop_head is not None:
            # mean audio token of each clip, (B, D)
            clip_audio = (audio * audio_valid[..., None]).sum(1) / audio_valid.sum(1, keepdim=True)
            losses.update(self._crop_losses(raw, batched_inputs, clip_audio))
        return losses

    def _foreground_probability(self, logits: torch.Tensor) -> torch.Tensor:
        """``(N, K', h, w)`` logits -> ``(N, 1, h, w)`` probability that a pixel is sounding."""
        if self.task == "binary":
            return logits.sigmoid()
        return 1.0 - logits.softmax(dim=1)[:, :1]

    def _segmentation_loss(self, logits: torch.Tensor, batched_inputs: List[dict]) -> torch.Tensor:
        """BCE (binary: labels > 0 are sounding) or cross-entropy (semantic) on labelled pixels."""
        if self.task == "semantic" and any(x.get("binary", False) for x in batched_inputs):
            raise ValueError(
                "a semantic TPAVI model cannot train on a binary dataset (labels are 0/1)"
            )
        labels = [s for x in batched_inputs for s in x["sem_seg"].to(self.device)]  # N x (H, W)
        target = ImageList.from_tensors(
            labels, self.size_divisibility, pad_value=self.ignore_label
        ).tensor
        valid = target != self.ignore_label  # (N, H, W)
        if not valid.any():  # no labelled frame in the batch
            return logits.sum() * 0.0
        if self.task == "binary":
            return F.binary_cross_entropy_with_logits(
                logits[:, 0][valid], (target[valid] > 0).float()
            )
        return F.cross_entropy(logits, target, ignore_index=self.ignore_label)

    def _crop_losses(
        self, raw: List[torch.Tensor], batched_inputs: List[dict], clip_audio: torch.Tensor
    ) -> Dict:
        """The weighted crop losses of a batch (only those with weight > 0).

        Args:
            raw: N frames ``(3, H, W)`` float 0-255 in ``image_format``.
            batched_inputs: the mapper dicts.
            clip_audio: ``(B, D)`` mean audio token of each clip.
        """
        targets = crop_targets_from_batch(
            batched_inputs,
            class_ids=self.crop_class_ids,
            min_area=self.crop_min_area,
            margin=self.crop_margin,
            max_crops=self.crop_max,
        )
        frames = ImageList.from_tensors(raw, self.size_divisibility).tensor  # (N, 3, H, W)
        crops = cut_crops(
            frames,
            targets.boxes.to(self.device),
            targets.frame_index.to(self.device),
            self.crop_size,
        )
        if self.crop_encoder is not None:
            if self.image_format == "BGR":
                crops = crops.flip(1)
            features = self.crop_encoder(crops)  # (R, F)
        else:
            maps = self.backbone((crops - self.pixel_mean) / self.pixel_std)
            coarsest = max(maps, key=lambda k: self.backbone.output_shape()[k].stride)
            features = maps[coarsest].mean(dim=(2, 3))
        out = self.crop_head(features)

        losses = {}
        if self.crop_ce_weight > 0:
            labels = targets.labels.to(self.device)
            if len(labels) and int(labels.max()) >= out["logits"].shape[1]:
                raise ValueError(
                    f"crop class {int(labels.max())} is beyond the crop head's "
                    f"{out['logits'].shape[1]} classes (MODEL.TPAVI.CROP_LOSS.NUM_CLASSES)"
                )
            losses["loss_crop_ce"] = self.crop_ce_weight * crop_classification_loss(
                out["logits"], labels
            )
        if self.crop_pairwise_weight > 0:
            objects = targets.object_index.to(self.device)
            losses["loss_crop_pairwise"] = self.crop_pairwise_weight * crop_pairwise_loss(
                out["embeddings"], objects
            )
        if self.crop_audio_cos_weight > 0:
            clips = targets.clip_index.to(self.device)
            cos = crop_audio_cosine_loss(out["audio_space"], clip_audio, clips)
            losses["loss_crop_audio_cos"] = self.crop_audio_cos_weight * cos
        return losses

    def _postprocess(
        self,
        logits: torch.Tensor,
        image_sizes: List[tuple],
        batched_inputs: List[dict],
        frames_per_clip: List[int],
    ) -> List[List[Dict[str, torch.Tensor]]]:
        """``(N, K', H, W)`` logits -> per clip and frame ``{"sem_seg": (C, H0, W0)}`` probs."""
        results = []
        start = 0
        for clip, count in zip(batched_inputs, frames_per_clip):
            frames = []
            for n in range(start, start + count):
                h, w = image_sizes[n]
                out_h, out_w = clip.get("height", h), clip.get("width", w)
                r = sem_seg_postprocess(logits[n], (h, w), out_h, out_w)  # (K', H0, W0)
                if self.task == "binary":
                    p = r.sigmoid()
                    probs = torch.cat([1.0 - p, p])
                else:
                    probs = r.softmax(dim=0)
                frames.append({"sem_seg": probs})
            results.append(frames)
            start += count
        return results


def _build_crop_branch(
    cfg, backbone: Backbone, class_list: Optional[ClassList]
) -> Tuple[Optional[CropEncoder], Optional[CropHead], Optional[Dict[str, int]]]:
    """The crop branch of ``MODEL.TPAVI.CROP_LOSS``: ``(encoder, head, class key -> id)``.

    All None when every crop-loss weight is 0. The encoder is None for the "shared" branch; the
    class ids (from the training dataset's class list) serve binary datasets' single-class clips.
    """
    c = cfg.MODEL.TPAVI.CROP_LOSS
    if max(c.CE_WEIGHT, c.PAIRWISE_WEIGHT, c.AUDIO_COS_WEIGHT) <= 0:
        return None, None, None
    encoder = None
    if c.BRANCH == "separate":
        encoder = build_crop_encoder(c.CNN, c.CNN_WEIGHTS, c.PIXEL_MEAN, c.PIXEL_STD, c.FEATURE_DIM)
        feature_dim = encoder.feature_dim
    elif c.BRANCH == "shared":
        shapes = backbone.output_shape()
        feature_dim = shapes[max(shapes, key=lambda k: shapes[k].stride)].channels
        if c.FEATURE_DIM and c.FEATURE_DIM != feature_dim:
            raise ValueError(f"CROP_LOSS.FEATURE_DIM {c.FEATURE_DIM} != backbone's {feature_dim}")
    else:
        raise ValueError(
            f"MODEL.TPAVI.CROP_LOSS.BRANCH must be 'separate' or 'shared', got {c.BRANCH!r}"
        )
    num_classes, class_ids = 0, None
    if c.CE_WEIGHT > 0:
        num_classes = c.NUM_CLASSES or (len(class_list) - 1 if class_list is not None else 0)
        if num_classes <= 0:
            raise ValueError("CROP_LOSS.NUM_CLASSES is 0 and DATASETS.TRAIN[0] has no class list")
        if class_list is not None:
            class_ids = {n: i for i, n in enumerate(class_list.names[1:]) if i < num_classes}
    head = CropHead(
        feature_dim,
        c.HIDDEN_DIM,
        num_classes=num_classes,
        audio_dim=cfg.MODEL.TPAVI.CONV_DIM if c.AUDIO_COS_WEIGHT > 0 else 0,
    )
    return encoder, head, class_ids
