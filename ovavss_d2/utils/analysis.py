"""FLOP and activation counts of the project's models with fvcore, through tensors.

fvcore's ``FlopCountAnalysis`` traces ``module(*inputs)`` with the JIT, which needs tensors in and
tensors out; the meta-architectures take a list of clip dicts and return per-frame dicts holding
``Instances``. Detectron2 0.6's adapter for this (``detectron2.utils.analysis``) cannot be
imported with torch 2.x (it imports ``caffe2``). :class:`ClipTensorAdapter` takes the clips'
frames and audio as tensors and returns every output tensor in one flat tuple, so that fvcore's
counters (and ``flop_count_table``) work on the whole inference.

Shape letters: B clips, T frames, H x W frame size, L x M log-mel patch.
"""

import logging
from typing import Any, List, Optional, Tuple

import torch
from detectron2.structures import Instances
from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis
from fvcore.nn.jit_handles import get_shape, matmul_flop_jit
from torch import nn

__all__ = [
    "ClipTensorAdapter",
    "activation_count_analysis",
    "count_flops",
    "flatten_tensors",
    "flop_count_analysis",
    "mm_flop_jit",
    "sdpa_flop_jit",
]

logger = logging.getLogger(__name__)


class ClipTensorAdapter(nn.Module):
    """``model(clips)`` as a function of tensors: ``(images, audio) -> tuple of tensors``.

    Args:
        model: a meta-architecture taking mapper-style clip dicts (``images``, ``audio``,
            ``height``, ``width``).
        original_size: ``(H0, W0)`` the outputs are resized to; None: the frames' size.
    """

    def __init__(self, model: nn.Module, original_size: Optional[Tuple[int, int]] = None):
        super().__init__()
        self.model = model
        self.original_size = original_size

    def forward(self, images: torch.Tensor, audio: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """
        Args:
            images: uint8 ``(B, T, 3, H, W)``; audio: ``(B, T, 1, L, M)`` log-mel patches.
        Returns:
            every tensor of the model's outputs (:func:`flatten_tensors`).
        """
        height, width = self.original_size or tuple(images.shape[-2:])
        clips = [
            {"images": frames, "audio": patches, "height": height, "width": width}
            for frames, patches in zip(images, audio)
        ]
        return tuple(flatten_tensors(self.model(clips)))


def flatten_tensors(outputs: Any) -> List[torch.Tensor]:
    """The tensors of nested lists, tuples, dicts and ``Instances`` (keys and fields sorted by
    name), depth first."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if isinstance(outputs, Instances):
        outputs = outputs.get_fields()
    if isinstance(outputs, dict):
        return [t for key in sorted(outputs) for t in flatten_tensors(outputs[key])]
    if isinstance(outputs, (list, tuple)):
        return [t for item in outputs for t in flatten_tensors(item)]
    return []


def sdpa_flop_jit(inputs, outputs) -> int:
    """fvcore handle of ``scaled_dot_product_attention``: ``q (..., Lq, d)``, ``k (..., Lk, d)``,
    ``v (..., Lk, dv)``: Lq*Lk*d multiply-adds for the scores plus Lq*Lk*dv for the output."""
    q, k, v = (get_shape(x) for x in inputs[:3])
    batch = 1
    for n in q[:-2]:
        batch *= n
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def mm_flop_jit(inputs, outputs) -> int:
    """fvcore handle of ``mm``, also in its ``out=`` form (a third input, the output)."""
    return matmul_flop_jit(inputs[:2], outputs)


def flop_count_analysis(module: nn.Module, inputs: Tuple) -> FlopCountAnalysis:
    """fvcore's analysis of ``module(*inputs)`` (one fused multiply-add is one flop), with the
    attention and ``mm(..., out=)`` handles and without per-op warnings."""
    analysis = FlopCountAnalysis(module, inputs)
    analysis.set_op_handle("aten::scaled_dot_product_attention", sdpa_flop_jit)
    analysis.set_op_handle("aten::mm", mm_flop_jit)
    return analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)


def activation_count_analysis(module: nn.Module, inputs: Tuple) -> ActivationCountAnalysis:
    """fvcore's activation count of ``module(*inputs)``, without per-op warnings."""
    analysis = ActivationCountAnalysis(module, inputs)
    return analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)


def count_flops(module: nn.Module, inputs: Tuple) -> float:
    """GFLOPs (multiply-adds) of ``module(*inputs)``; ops fvcore cannot count are logged."""
    analysis = flop_count_analysis(module, inputs)
    total = analysis.total()
    skipped = analysis.unsupported_ops()
    if skipped:
        logger.info("fvcore skipped (uncounted) ops: %s", dict(skipped))
    return total / 1e9
