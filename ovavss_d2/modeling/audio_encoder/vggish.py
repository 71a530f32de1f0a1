"""VGGish (Hershey et al., ICASSP 2017), the reference's audio encoder, in torchvggish's key layout.

Shapes: ``N`` patches, ``L`` = 96 STFT frames, ``M`` = 64 mel bands.

The state-dict keys match the public torchvggish checkpoint ``vggish-10086976.pth``
(``features.{0,3,6,8,11,13}.*`` convolutions, ``embeddings.{0,2,4}.*`` linear layers), so that file
loads as is. No VGGish weights ship in any package: without a checkpoint the network is randomly
initialised (with a warning), which is only useful for tests and smoke runs.
"""

import logging
import os
from typing import Dict

import torch
from detectron2.config import configurable
from torch import nn

from .base import AUDIO_ENCODER_REGISTRY, AudioEncoder

logger = logging.getLogger(__name__)

# Where users with internet get the weights (torchvggish release, TF VGGish ported to PyTorch).
VGGISH_CHECKPOINT_URL = (
    "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"
)

# Conv widths of the four blocks; "M" is a 2x2 max-pool. Indices in `features` follow from it.
_VGGISH_LAYOUT = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M")


def _make_features() -> nn.Sequential:
    layers = []
    in_ch = 1
    for item in _VGGISH_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_ch, item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            in_ch = item
    return nn.Sequential(*layers)


def load_vggish_state_dict(path: str) -> dict:
    """Read a torchvggish-layout checkpoint (a plain state dict, or one under a "state_dict"/"model"
    key) and keep the ``features.*`` and ``embeddings.*`` tensors."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(ckpt, dict) and isinstance(ckpt.get(key), dict):
            ckpt = ckpt[key]
    return {k: v for k, v in ckpt.items() if k.startswith(("features.", "embeddings."))}


@AUDIO_ENCODER_REGISTRY.register()
class VGGish(AudioEncoder):
    """VGGish: 6 conv layers in 4 blocks, then 3 FC layers to a 128-d embedding.

    Input: log(mel + 0.01) patches ``(N, 1, 96, 64)`` (16 kHz, 25 ms / 10 ms STFT, 125-7500 Hz).
    Output: ``(N, 128)``, not PCA-whitened nor quantised (the reference uses it raw).
    """

    output_dim = 128
    input_size = (96, 64)

    @configurable
    def __init__(self, *, weights: str = "", freeze: bool = True, final_relu: bool = True):
        """
        Args:
            weights: torchvggish-layout checkpoint path; "" -> random initialisation with a
                warning; "none" -> random initialisation, silently (tests, smoke runs).
            freeze: stop gradients and keep eval mode.
            final_relu: apply the ReLU after the last linear layer (as torchvggish and the
                reference do).
        """
        super().__init__(freeze=freeze)
        self.features = _make_features()
        fc = [nn.Linear(512 * 6 * 4, 4096), nn.ReLU(inplace=True)]
        fc += [nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Linear(4096, self.output_dim)]
        if final_relu:
            fc.append(nn.ReLU(inplace=True))
        self.embeddings = nn.Sequential(*fc)
        if weights and weights != "none":
            self.load_state_dict(load_vggish_state_dict(weights))
            self.weights_source = os.path.abspath(weights)
            logger.info("Loaded VGGish weights from %s", weights)
        elif not weights:
            logger.warning(
                "VGGish has no weights (MODEL.AUDIO_ENCODER.WEIGHTS is empty): randomly "
                "initialised. "
                "Download %s and set MODEL.AUDIO_ENCODER.WEIGHTS for reference parity, or use "
                "MODEL.AUDIO_ENCODER.NAME YAMNet (pretrained, offline).",
                VGGISH_CHECKPOINT_URL,
            )
        if freeze:
            self.freeze()

    @classmethod
    def from_config(cls, cfg) -> dict:
        return {
            "weights": cfg.MODEL.AUDIO_ENCODER.WEIGHTS,
            "freeze": cfg.MODEL.AUDIO_ENCODER.FREEZE,
            "final_relu": cfg.MODEL.AUDIO_ENCODER.VGGISH_FINAL_RELU,
        }

    def read_weights(self, source: str) -> Dict[str, torch.Tensor]:
        """The VGGish tensors of the torchvggish-layout checkpoint ``source``."""
        return load_vggish_state_dict(source)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """
        Args:
            patches: float ``(N, 1, 96, 64)`` log-mel patches.

        Returns:
            ``(N, 128)`` embeddings.
        """
        self.check_input(patches)
        x = self.features(patches)  # (N, 512, 6, 4)
        # TF VGGish flattens in (H, W, C) order; the ported first FC layer expects that order.
        x = x.permute(0, 2, 3, 1).flatten(1)  # (N, 6 * 4 * 512)
        return self.embeddings(x)
