"""Bi-directional audio-visual attention fusion of pixel tokens and audio tokens.

Shape letters: B clips, T frames per clip, N = B * T frames, S pixel tokens per frame (all levels
flattened), C channels of the pixel tokens, C_a channels of the audio embeddings.
"""

import torch
from torch import nn


class AudioVisualFusion(nn.Module):
    """One bi-directional attention fusion layer between a frame's pixel tokens and audio tokens.

    Both directions are residual updates scaled by learnable per-channel layer-scale vectors
    (initialised to ``layer_scale_init``, 1/6 in the reference), so at initialisation the layer
    only nudges the (possibly pretrained) visual features:

    1. audio <- pixels: the audio token of frame t (projected to C channels) attends to the pixel
       tokens of frame t, so the audio token carries what is visible in that frame.
    2. pixels <- audio: every pixel token of frame t attends to the updated audio tokens and adds
       the result to itself. Which tokens it sees is ``audio_context``:

       - ``"clip"`` (default): the clip's T audio tokens, each key tagged with a learned embedding
         of its temporal offset ``s - t`` (clamped to ``+-max_temporal_offset``), so the frame's
         own second is marked and neighbouring seconds are distinguishable. With a single audio
         key the softmax is trivially 1 and the update is the same vector at every pixel; the
         clip's tokens give the attention a real choice (e.g. a sound that starts a second late).
       - ``"frame"``: only the frame's own audio token (the reference behaviour).

    Both directions are used downstream (the updated audio tokens are the keys of step 2), so
    every parameter takes part in the loss. Queries and keys on the pixel side carry the pixel
    position encoding; values do not. Padding of batched frames is not masked (as Mask2Former's
    pixel decoder), so padded pixels take part in step 1's pooling.
    """

    def __init__(
        self,
        visual_dim: int,
        audio_dim: int,
        *,
        num_heads: int = 8,
        dropout: float = 0.0,
        layer_scale_init: float = 1.0 / 6.0,
        audio_context: str = "clip",
        max_temporal_offset: int = 10,
    ):
        """
        Args:
            visual_dim: C, channels of the pixel tokens (the attention width).
            audio_dim: C_a, channels of the audio embeddings (projected to C).
            num_heads: attention heads of both directions.
            dropout: dropout on the attention weights and on both updates.
            layer_scale_init: initial value of the layer-scale vectors.
            audio_context: ``"clip"`` or ``"frame"``, see the class docstring.
            max_temporal_offset: ``"clip"`` context: offsets beyond this share one embedding.
        """
        super().__init__()
        if audio_context not in ("clip", "frame"):
            raise ValueError(f"audio_context must be 'clip' or 'frame', got {audio_context!r}")
        self.audio_context = audio_context
        self.max_temporal_offset = max_temporal_offset
        self.audio_proj = nn.Linear(audio_dim, visual_dim)
        self.norm_pixels = nn.LayerNorm(visual_dim)
        self.norm_audio = nn.LayerNorm(visual_dim)
        self.norm_audio_updated = nn.LayerNorm(visual_dim)
        self.audio_from_pixels = nn.MultiheadAttention(
            visual_dim, num_heads, dropout=dropout, batch_first=True
        )
        self.pixels_from_audio = nn.MultiheadAttention(
            visual_dim, num_heads, dropout=dropout, batch_first=True
        )
        self.dropout = nn.Dropout(dropout)
        self.gamma_audio = nn.Parameter(torch.full((visual_dim,), float(layer_scale_init)))
        self.gamma_pixels = nn.Parameter(torch.full((visual_dim,), float(layer_scale_init)))
        if audio_context == "clip":
            self.offset_embed = nn.Embedding(2 * max_temporal_offset + 1, visual_dim)
            nn.init.trunc_normal_(self.offset_embed.weight, std=0.02)
        else:
            self.offset_embed = None

    def forward(
        self,
        pixels: torch.Tensor,
        pixel_pos: torch.Tensor,
        audio: torch.Tensor,
        num_frames: int,
    ) -> torch.Tensor:
        """
        Args:
            pixels: ``(N, S, C)`` pixel tokens, frames of a clip contiguous (index ``b * T + t``).
            pixel_pos: ``(N, S, C)`` their position encoding.
            audio: ``(B, T, C_a)``, one embedding per frame.
            num_frames: T.

        Returns:
            ``(N, S, C)``, the fused pixel tokens.
        """
        n, _, dim = pixels.shape
        batch = audio.shape[0]
        if audio.shape[1] != num_frames or batch * num_frames != n:
            raise ValueError(
                f"audio {tuple(audio.shape)} does not match {n} frames of {num_frames} per clip"
            )
        # 1. audio <- pixels, one audio token per frame: (N, 1, C).
        audio_tokens = self.audio_proj(audio).reshape(n, 1, dim)
        pixels_normed = self.norm_pixels(pixels)
        delta_audio, _ = self.audio_from_pixels(
            query=self.norm_audio(audio_tokens),
            key=pixels_normed + pixel_pos,
            value=pixels_normed,
            need_weights=False,
        )
        audio_tokens = audio_tokens + self.gamma_audio * self.dropout(delta_audio)

        # 2. pixels <- audio.
        audio_normed = self.norm_audio_updated(audio_tokens)  # (N, 1, C)
        if self.audio_context == "frame":
            keys = values = audio_normed
        else:
            clip_tokens = audio_normed.reshape(batch, 1, num_frames, dim)  # (B, 1, T_s, C)
            frames = torch.arange(num_frames, device=pixels.device)
            offsets = (frames[None, :] - frames[:, None]).clamp(
                -self.max_temporal_offset, self.max_temporal_offset
            )  # (T_t, T_s): s - t
            offset_embed = self.offset_embed(offsets + self.max_temporal_offset)  # (T_t, T_s, C)
            keys = (clip_tokens + offset_embed[None]).reshape(n, num_frames, dim)
            values = clip_tokens.expand(batch, num_frames, num_frames, dim).reshape(
                n, num_frames, dim
            )
        delta_pixels, _ = self.pixels_from_audio(
            query=pixels_normed + pixel_pos, key=keys, value=values, need_weights=False
        )
        return pixels + self.gamma_pixels * self.dropout(delta_pixels)
