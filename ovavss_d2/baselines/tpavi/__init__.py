"""The AVSBench TPAVI baseline, a sibling of the main model (docs/TPAVI.md).

``add_tpavi_config`` (its ``MODEL.TPAVI.*`` keys), the meta-architecture ``TPAVIAVS`` (registered
on import), the ``TPAVI`` audio-visual attention module, ``TPAVIDecoder`` (FPN-like decoder with
TPAVI modules), crop targets derived from ground-truth masks, the crop branch and the auxiliary
losses.
"""

from .boxes import CropTargets, crop_class_ids, crop_targets_from_batch
from .config import add_tpavi_config
from .crop_branch import CropEncoder, CropHead, build_crop_encoder
from .crop_losses import (
    audio_visual_matching_loss,
    crop_audio_cosine_loss,
    crop_classification_loss,
    crop_pairwise_loss,
)
from .fpn_decoder import TPAVIDecoder
from .meta_arch import TPAVIAVS
from .tpavi import TPAVI, pad_clip_tokens

__all__ = [
    "add_tpavi_config",
    "TPAVIAVS",
    "CropTargets",
    "crop_class_ids",
    "crop_targets_from_batch",
    "CropEncoder",
    "CropHead",
    "build_crop_encoder",
    "audio_visual_matching_loss",
    "crop_audio_cosine_loss",
    "crop_classification_loss",
    "crop_pairwise_loss",
    "TPAVIDecoder",
    "TPAVI",
    "pad_clip_tokens",
]
