"""Checkpoint hooks of OV-AVSS: a frozen audio encoder rebuilt from its own weights file can be
kept out of checkpoints (``MODEL.OVAVSS.CHECKPOINT_FROZEN_AUDIO_ENCODER`` False)."""

from typing import Optional

from torch import nn

__all__ = ["drop_frozen_audio_keys", "fill_frozen_audio_keys"]


def _frozen_audio_prefix(module: nn.Module) -> Optional[str]:
    if module.checkpoint_frozen_audio:
        return None
    if any(p.requires_grad for p in module.audio_encoder.parameters()):
        return None
    return "audio_encoder."


def drop_frozen_audio_keys(module: nn.Module, state_dict, prefix: str, local_metadata) -> None:
    """``state_dict`` post-hook: remove the frozen audio encoder's keys when asked to."""
    frozen = _frozen_audio_prefix(module)
    if frozen is None:
        return
    for key in [k for k in state_dict if k.startswith(prefix + frozen)]:
        del state_dict[key]


def fill_frozen_audio_keys(module: nn.Module, state_dict, prefix: str, *args) -> None:
    """Take the frozen audio encoder's weights from the model when a checkpoint lacks them."""
    frozen = _frozen_audio_prefix(module)
    if frozen is None:
        return
    if any(k.startswith(prefix + frozen) for k in state_dict):
        return
    for key, value in module.audio_encoder.state_dict().items():
        state_dict[prefix + frozen + key] = value
