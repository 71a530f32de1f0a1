"""Parts of the AVSBench TPAVI baseline (meta-architecture ``TPAVIAVS``, docs/TPAVI.md).

``TPAVI`` audio-visual attention module, ``TPAVIDecoder`` (FPN-like decoder with TPAVI modules),
boxes and crop targets derived from ground-truth masks, the crop branch and the auxiliary losses.
"""

from .boxes import CropTargets, boxes_from_masks, crop_class_ids, crop_targets_from_batch
from .crop_branch import CropEncoder, CropHead, build_crop_encoder, cut_crops
from .crop_losses import (
    audio_visual_matching_loss,
    crop_audio_cosine_loss,
    crop_classification_loss,
    crop_pairwise_loss,
)
from .fpn_decoder import TPAVIDecoder
from .tpavi import TPAVI, pad_clip_tokens

__all__ = [
    "CropTargets",
    "boxes_from_masks",
    "crop_class_ids",
    "crop_targets_from_batch",
    "CropEncoder",
    "CropHead",
    "build_crop_encoder",
    "cut_crops",
    "audio_visual_matching_loss",
    "crop_audio_cosine_loss",
    "crop_classification_loss",
    "crop_pairwise_loss",
    "TPAVIDecoder",
    "TPAVI",
    "pad_clip_tokens",
]
