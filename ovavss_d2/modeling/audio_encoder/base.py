"""Registry, base class and builder of the audio encoders.

Shapes: ``N`` patches, ``B`` clips, ``T`` frames per clip, ``L`` STFT frames per patch (96),
``M`` mel bands (64), ``C`` embedding size.
"""

import logging
from typing import Dict

import torch
from detectron2.config import CfgNode
from detectron2.utils.registry import Registry
from torch import nn

AUDIO_ENCODER_REGISTRY = Registry("AUDIO_ENCODER")
AUDIO_ENCODER_REGISTRY.__doc__ = """
Registry for audio encoders, which map log-mel patches ``(N, 1, L, M)`` to embeddings ``(N, C)``.

The registered object is called with ``obj(cfg)`` (``@configurable`` classes accept it) and must be
an ``nn.Module`` with an ``output_dim: int`` attribute (C) and ``forward(patches) -> (N, C)``.
"""

logger = logging.getLogger(__name__)


class AudioEncoder(nn.Module):
    """Base class: an ``output_dim`` attribute and optional freezing.

    A frozen encoder has ``requires_grad=False`` on every parameter and stays in eval mode even when
    the surrounding model is put in training mode (so dropout/BN never change its output).
    """

    output_dim: int = 0
    # The file the weights were read from ("" for random initialisation). A frozen encoder with a
    # source is left out of checkpoints, which record the source (ovavss_d2.checkpoint).
    weights_source: str = ""

    def __init__(self, *, freeze: bool = True):
        super().__init__()
        self.frozen = freeze

    def read_weights(self, source: str) -> Dict[str, torch.Tensor]:
        """The state dict of this module that ``source`` (a ``weights_source``) holds."""
        return torch.load(source, map_location="cpu", weights_only=True)

    def freeze(self) -> "AudioEncoder":
        """Stop gradients and keep eval mode from now on."""
        self.frozen = True
        for p in self.parameters():
            p.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> "AudioEncoder":
        return super().train(mode and not self.frozen)

    def check_input(self, patches: torch.Tensor) -> None:
        """Raise a ValueError unless ``patches`` is ``(N, 1, L, M)`` with this encoder's L and M."""
        expected = getattr(self, "input_size", None)
        if patches.dim() != 4 or patches.shape[1] != 1:
            raise ValueError(
                f"{type(self).__name__} expects log-mel patches (N, 1, L, M), "
                f"got {tuple(patches.shape)}"
            )
        if expected is not None and tuple(patches.shape[2:]) != tuple(expected):
            raise ValueError(
                f"{type(self).__name__} expects (L, M) = {tuple(expected)} patches, "
                f"got {tuple(patches.shape[2:])} (check INPUT.AUDIO.PATCH_FRAMES / NUM_MEL_BINS)"
            )


def build_audio_encoder(cfg: CfgNode) -> nn.Module:
    """Build the audio encoder named by ``cfg.MODEL.AUDIO_ENCODER.NAME`` and check its interface.

    Returns:
        nn.Module with ``output_dim: int``; ``forward((N, 1, L, M)) -> (N, output_dim)``.
    """
    name = cfg.MODEL.AUDIO_ENCODER.NAME
    model = AUDIO_ENCODER_REGISTRY.get(name)(cfg)
    if not isinstance(model, nn.Module):
        raise TypeError(f"Audio encoder {name} is not an nn.Module: {type(model)}")
    dim = getattr(model, "output_dim", None)
    if not isinstance(dim, int) or dim <= 0:
        raise TypeError(
            f"Audio encoder {name} must define a positive int `output_dim`, got {dim!r}"
        )
    if cfg.MODEL.AUDIO_ENCODER.FREEZE:
        if hasattr(model, "freeze"):
            model.freeze()
        else:
            for p in model.parameters():
                p.requires_grad_(False)
    logger.info(
        "Audio encoder %s: output_dim=%d, frozen=%s", name, dim, cfg.MODEL.AUDIO_ENCODER.FREEZE
    )
    return model


def encode_audio_frames(encoder: nn.Module, audio: torch.Tensor) -> torch.Tensor:
    """Per-frame audio embeddings for clips of any length.

    Args:
        encoder: an audio encoder (``(N, 1, L, M) -> (N, C)``).
        audio: float ``(B, T, 1, L, M)`` log-mel patches, one per frame (mapper key ``audio``
            stacked over the batch).

    Returns:
        ``(B, T, C)`` embeddings in the encoder's dtype and device.
    """
    if audio.dim() != 5:
        raise ValueError(f"Expected audio patches (B, T, 1, L, M), got {tuple(audio.shape)}")
    b, t = audio.shape[:2]
    emb = encoder(audio.flatten(0, 1))  # (B*T, 1, L, M) -> (B*T, C)
    return emb.view(b, t, -1)
