"""TPAVI: temporal pixel-wise audio-visual interaction (the AVSBench baseline's fusion module).

Shape letters: ``N`` frames of a batch (all clips, clip after clip), ``B`` clips, ``T`` audio
tokens per clip (frames of the longest clip), ``C`` channels of the visual map, ``C'`` the
module's query/key/value width, ``H x W`` the map size.

AVSBench's TPAVI is a non-local block over a clip's ``T x H x W`` visual map and its audio
embeddings broadcast to every pixel of their frame. Here every pixel of every frame of a clip
attends to the clip's ``T`` audio tokens themselves: the broadcast copies of one token are
identical keys, so nothing is lost by using the token once, and the attention costs
``O(T*H*W*T)`` instead of ``O((T*H*W)^2)``. Frames only ever see the audio of their own clip.
"""

from typing import Optional

import torch
from detectron2.layers import Conv2d, get_norm
from torch import nn

__all__ = ["TPAVI", "pad_clip_tokens"]


def pad_clip_tokens(tokens: torch.Tensor, frames_per_clip: list) -> tuple:
    """Group per-frame tokens by clip, padding clips to the longest one.

    Args:
        tokens: ``(N, C)`` one token per frame, clip after clip.
        frames_per_clip: ``B`` frame counts summing to ``N``.

    Returns:
        ``(padded (B, T, C), valid (B, T) bool, clip_index (N,) long)``; ``clip_index[n]`` is the
        clip of frame ``n``.
    """
    if sum(frames_per_clip) != tokens.shape[0]:
        raise ValueError(f"frame counts {frames_per_clip} do not sum to {tokens.shape[0]} tokens")
    counts = torch.as_tensor(frames_per_clip, device=tokens.device)
    padded = nn.utils.rnn.pad_sequence(list(tokens.split(list(frames_per_clip))), batch_first=True)
    valid = torch.arange(padded.shape[1], device=tokens.device)[None] < counts[:, None]
    clip_index = torch.repeat_interleave(
        torch.arange(len(frames_per_clip), device=tokens.device), counts
    )
    return padded, valid, clip_index


class TPAVI(nn.Module):
    """Audio-visual attention of one feature level: ``x + W(attend(q(x), k(a), v(a)))``.

    The output projection ``W`` (1x1 convolution + norm) starts at zero, so the module starts as
    the identity (as non-local blocks do) and learns how much audio to add.
    """

    def __init__(
        self,
        channels: int,
        *,
        inter_channels: int = 0,
        attention: str = "dot",
        norm: str = "GN",
    ):
        """
        Args:
            channels: C, channels of the visual map and of the audio tokens.
            inter_channels: C', query/key/value width; 0 -> ``channels // 2``.
            attention: "dot" (weights ``q.k / T``, AVSBench's non-local "dot" form) or "softmax"
                (``softmax(q.k / sqrt(C'))`` over the clip's tokens).
            norm: norm of the output projection ("GN", "BN", "" for none).
        """
        super().__init__()
        if attention not in ("dot", "softmax"):
            raise ValueError(f"TPAVI attention must be 'dot' or 'softmax', got {attention!r}")
        inter = inter_channels or max(channels // 2, 1)
        self.attention = attention
        self.query = nn.Conv2d(channels, inter, kernel_size=1)
        self.key = nn.Linear(channels, inter)
        self.value = nn.Linear(channels, inter)
        norm_layer = get_norm(norm, channels) if norm else None
        self.out = Conv2d(inter, channels, kernel_size=1, bias=norm_layer is None, norm=norm_layer)
        if norm_layer is not None:
            nn.init.zeros_(norm_layer.weight)
        else:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(
        self,
        x: torch.Tensor,
        audio: torch.Tensor,
        clip_index: torch.Tensor,
        audio_valid: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """
        Args:
            x: ``(N, C, H, W)`` visual features of every frame, clip after clip.
            audio: ``(B, T, C)`` audio tokens of each clip (padded to the longest clip).
            clip_index: ``(N,)`` clip of each frame.
            audio_valid: ``(B, T)`` True for real tokens; None: all real.

        Returns:
            ``(N, C, H, W)`` features after the interaction.
        """
        n, _, h, w = x.shape
        q = self.query(x).flatten(2)  # (N, C', HW)
        k = self.key(audio)[clip_index]  # (B, T, C') -> (N, T, C')
        v = self.value(audio)[clip_index]  # (N, T, C')
        logits = torch.einsum("ncp,ntc->npt", q, k)  # (N, HW, T)
        valid = None if audio_valid is None else audio_valid[clip_index][:, None, :]  # (N, 1, T)
        if self.attention == "softmax":
            logits = logits * q.shape[1] ** -0.5
            if valid is not None:
                logits = logits.masked_fill(~valid, float("-inf"))
            weights = logits.softmax(dim=-1)
        else:
            if valid is not None:
                logits = logits.masked_fill(~valid, 0.0)
                count = valid.sum(dim=-1, keepdim=True).clamp(min=1)
            else:
                count = logits.shape[-1]
            weights = logits / count
        y = torch.einsum("npt,ntc->ncp", weights, v).reshape(n, -1, h, w)  # (N, C', H, W)
        return x + self.out(y)
