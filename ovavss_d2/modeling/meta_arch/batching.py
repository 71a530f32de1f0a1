"""The model's input batch: the clips' frames and audio patches, stacked on the host and copied to
the device once per batch.

Shape letters: B clips, T frames per clip, H_b x W_b the frames of clip b, Hp x Wp the padded
batch size (a multiple of the size divisibility), L x M a log-mel patch.

Stacking on the host (into page-locked memory when the device is CUDA) makes one asynchronous copy
per tensor instead of one blocking copy per frame; normalisation runs on the device.
"""

from typing import Dict, List, Sequence, Tuple

import torch
from detectron2.structures import ImageList

__all__ = ["batch_clips", "stack_padded"]


def stack_padded(
    tensors: Sequence[torch.Tensor], size_divisibility: int = 0, pin_memory: bool = False
) -> torch.Tensor:
    """Stack tensors of equal leading shape, zero-padding their last two dims to a common size.

    Args:
        tensors: B tensors ``(..., H_b, W_b)`` on one device.
        size_divisibility: round the padded size up to a multiple of this (0 or 1: no rounding).
        pin_memory: allocate the result in page-locked host memory (host tensors only).
    Returns:
        ``(B, ..., Hp, Wp)`` on the tensors' device, ``tensors[b]`` in the top-left corner.
    """
    height = max(int(t.shape[-2]) for t in tensors)
    width = max(int(t.shape[-1]) for t in tensors)
    if size_divisibility > 1:
        height = -(-height // size_divisibility) * size_divisibility
        width = -(-width // size_divisibility) * size_divisibility
    first = tensors[0]
    shape = (len(tensors), *first.shape[:-2], height, width)
    out = torch.zeros(shape, dtype=first.dtype, device=first.device, pin_memory=pin_memory)
    for slot, t in zip(out, tensors):
        slot[..., : t.shape[-2], : t.shape[-1]] = t
    return out


def batch_clips(
    batched_inputs: Sequence[Dict],
    pixel_mean: torch.Tensor,
    pixel_std: torch.Tensor,
    size_divisibility: int,
) -> Tuple[ImageList, torch.Tensor, int]:
    """Normalised, padded frames and the audio patches of a batch, on the device of ``pixel_mean``.

    Args:
        batched_inputs: B mapper dicts, all with the same T: ``images`` ``(T, 3, H_b, W_b)``
            (uint8), ``audio`` ``(T, 1, L, M)``.
        pixel_mean, pixel_std: ``(3, 1, 1)`` on the model's device.
        size_divisibility: pad the frames to a multiple of this.
    Returns:
        ``ImageList`` of ``(B*T, 3, Hp, Wp)`` float frames (padding 0 after normalisation) with
        the B*T frame sizes, float audio ``(B, T, 1, L, M)``, and T.
    """
    if not batched_inputs:
        raise ValueError("OVAVSS got an empty batch")
    lengths = {int(x["images"].shape[0]) for x in batched_inputs}
    if len(lengths) != 1:
        raise ValueError(
            f"all clips of a batch must have the same number of frames T, got "
            f"{sorted(lengths)}: use a fixed INPUT.SAMPLING_FRAME_NUM for training and batches "
            "of 1 clip to test clips of different lengths"
        )
    num_frames = lengths.pop()
    device = pixel_mean.device
    clips = [x["images"] for x in batched_inputs]
    pin = device.type == "cuda" and all(c.device.type == "cpu" for c in clips)
    frames = stack_padded(clips, size_divisibility, pin)  # (B, T, 3, Hp, Wp)
    images = frames.flatten(0, 1).to(device, non_blocking=True).float()
    images = (images - pixel_mean) / pixel_std
    padded_h, padded_w = images.shape[-2:]
    sizes: List[Tuple[int, int]] = []
    for b, clip in enumerate(clips):
        h, w = int(clip.shape[-2]), int(clip.shape[-1])
        rows = slice(b * num_frames, (b + 1) * num_frames)
        # Padding is 0 after normalisation (as ImageList.from_tensors pads normalised frames).
        if h < padded_h:
            images[rows, :, h:] = 0
        if w < padded_w:
            images[rows, :, :, w:] = 0
        sizes += [(h, w)] * num_frames
    patches = [x["audio"] for x in batched_inputs]
    pin = device.type == "cuda" and all(p.device.type == "cpu" for p in patches)
    audio = stack_padded(patches, 0, pin).to(device, non_blocking=True).float()
    return ImageList(images, sizes), audio, num_frames
