"""Audio-conditioned masked-attention transformer decoder with clip-level queries.

Shape letters: B clips, T frames per clip, N = B * T frames (frames of a clip contiguous, index
``b * T + t``), Q queries, C hidden channels, C_in pixel-decoder channels, C_m mask-feature
channels, C_a audio channels, D ``pred_embeds`` channels, h heads, H_i x W_i a level's size,
H4 x W4 the mask-feature size (stride 4).
"""

from typing import Dict, List, Optional

import fvcore.nn.weight_init as weight_init
import torch
from detectron2.config import configurable
from detectron2.layers import Conv2d
from torch import nn
from torch.nn import functional as F

from .position_encoding import PositionEmbeddingSine, TemporalEmbedding


class AttentionLayer(nn.Module):
    """Residual multi-head attention (self or cross) with post- or pre-LayerNorm.

    Positions are added to queries and keys, never to values.
    """

    def __init__(self, d_model: int, nhead: int, dropout: float = 0.0, pre_norm: bool = False):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.pre_norm = pre_norm
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(
        self,
        tgt: torch.Tensor,
        query_pos: torch.Tensor,
        memory: Optional[torch.Tensor] = None,
        pos: Optional[torch.Tensor] = None,
        attn_mask: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """
        Args:
            tgt: ``(B, Q, C)`` queries.
            query_pos: ``(B, Q, C)``.
            memory: ``(B, K, C)`` keys/values; None: self-attention over ``tgt``.
            pos: ``(B, K, C)`` key positions (cross-attention only).
            attn_mask: bool ``(B*h, Q, K)``, True = not attended.

        Returns:
            ``(B, Q, C)``.
        """
        x = self.norm(tgt) if self.pre_norm else tgt
        if memory is None:
            key, value = x + query_pos, x
        else:
            key, value = memory + pos, memory
        out, _ = self.attn(x + query_pos, key, value, attn_mask=attn_mask, need_weights=False)
        out = tgt + self.dropout(out)
        return out if self.pre_norm else self.norm(out)


class FFNLayer(nn.Module):
    """Residual two-layer ReLU MLP with post- or pre-LayerNorm."""

    def __init__(
        self, d_model: int, dim_feedforward: int, dropout: float = 0.0, pre_norm: bool = False
    ):
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(d_model)
        self.pre_norm = pre_norm
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, tgt: torch.Tensor) -> torch.Tensor:
        """``(B, Q, C) -> (B, Q, C)``."""
        x = self.norm(tgt) if self.pre_norm else tgt
        out = tgt + self.dropout(self.linear2(self.dropout(F.relu(self.linear1(x)))))
        return out if self.pre_norm else self.norm(out)


class MLP(nn.Sequential):
    """``num_layers`` linear layers with ReLU between them."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int):
        dims = [input_dim] + [hidden_dim] * (num_layers - 1) + [output_dim]
        layers: List[nn.Module] = []
        for i in range(num_layers):
            layers.append(nn.Linear(dims[i], dims[i + 1]))
            if i < num_layers - 1:
                layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class FrameObjectnessHead(nn.Module):
    """Whether a query is a sounding object in each frame, decided with that frame's audio.

    ``logit(q, t) = MLP(relu(W_q x_q + W_a a_t))``: an MLP on the concatenation of the query
    ``x_q`` and frame t's audio token ``a_t`` (the two linear maps of the concatenation, summed by
    broadcasting, so the ``(B, Q, T, 2C)`` concatenation is never built).
    """

    def __init__(self, hidden_dim: int):
        super().__init__()
        self.query_proj = nn.Linear(hidden_dim, hidden_dim)
        self.audio_proj = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.mlp = MLP(hidden_dim, hidden_dim, 1, 2)

    def forward(self, queries: torch.Tensor, audio_tokens: torch.Tensor) -> torch.Tensor:
        """``(B, Q, C)`` queries and ``(B, T, C)`` audio tokens -> ``(B, Q, T)`` logits."""
        # (B, Q, 1, C) + (B, 1, T, C) -> (B, Q, T, C)
        joint = self.query_proj(queries)[:, :, None] + self.audio_proj(audio_tokens)[:, None]
        return self.mlp(F.relu(joint)).squeeze(-1)


class AudioMaskedTransformerDecoder(nn.Module):
    """Mask2Former's masked-attention decoder with clip-level queries and audio cross-attention.

    Q learned queries are shared by the T frames of a clip: each query predicts one mask per frame
    and one set of logits per clip. Before the first prediction the queries cross-attend to the
    clip's T audio tokens. Each of ``dec_layers`` layers then does, in order:

    1. masked cross-attention to one pixel-decoder level (round-robin, coarsest first). A clip's
       keys are the pixels of all its T frames at that level, ``T * H_i * W_i`` tokens with 2-D
       sine positions plus a frame embedding plus a level embedding; a query only sees the pixels
       where its previous mask (bilinearly resized) has probability >= ``mask_attn_threshold``.
       A query whose mask is empty everywhere sees all pixels;
    2. self-attention among the clip's queries;
    3. cross-attention to the clip's T audio tokens (with the frame embedding as position);
    4. FFN.

    Every step works per clip (batch dimension B), so clips of a batch never attend to each
    other. The heads read the LayerNormed queries after the audio step and after every layer
    (``dec_layers + 1`` prediction sets, for deep supervision). With ``frame_objectness`` a
    fourth head (:class:`FrameObjectnessHead`) reads each query with each frame's audio token and
    says whether the query sounds in that frame; the clip-level objectness head stays (whether the
    query is a sounding object at all).
    """

    @configurable
    def __init__(
        self,
        in_channels: int,
        *,
        mask_dim: int,
        audio_dim: int,
        hidden_dim: int = 256,
        num_queries: int = 100,
        nheads: int = 8,
        dim_feedforward: int = 2048,
        dec_layers: int = 9,
        dropout: float = 0.0,
        pre_norm: bool = False,
        enforce_input_proj: bool = False,
        embed_dim: int = 256,
        mask_attn_threshold: float = 0.5,
        temporal_embed: str = "sine",
        max_num_frames: int = 64,
        num_feature_levels: int = 3,
        frame_objectness: bool = False,
    ):
        """
        Args:
            in_channels: C_in, channels of the multi-scale features.
            mask_dim: C_m, channels of the mask features.
            audio_dim: C_a, channels of the audio embeddings.
            hidden_dim: C, query and attention width.
            num_queries: Q.
            nheads: attention heads.
            dim_feedforward: FFN width.
            dec_layers: decoder layers (predictions: ``dec_layers + 1``).
            dropout: dropout of attention and FFN.
            pre_norm: pre-LayerNorm instead of post-LayerNorm sub-layers.
            enforce_input_proj: project the features even when ``in_channels == hidden_dim``.
            embed_dim: D, channels of ``pred_embeds``.
            mask_attn_threshold: mask probability from which a pixel is attended.
            temporal_embed: frame embedding, ``"sine"``, ``"learned"`` or ``"none"``.
            max_num_frames: most frames of a clip with the learned frame embedding.
            num_feature_levels: levels of ``multi_scale_features``.
            frame_objectness: add the per-frame sounding head (``pred_frame_objectness``).
        """
        super().__init__()
        self.num_heads = nheads
        self.num_layers = dec_layers
        self.num_queries = num_queries
        self.num_feature_levels = num_feature_levels
        self.mask_attn_threshold = mask_attn_threshold

        self.pe_layer = PositionEmbeddingSine(hidden_dim // 2, normalize=True)
        self.temporal_embed = TemporalEmbedding(hidden_dim, temporal_embed, max_num_frames)
        self.level_embed = nn.Embedding(num_feature_levels, hidden_dim)
        self.input_proj = nn.ModuleList()
        for _ in range(num_feature_levels):
            if in_channels != hidden_dim or enforce_input_proj:
                proj = Conv2d(in_channels, hidden_dim, kernel_size=1)
                weight_init.c2_xavier_fill(proj)
            else:
                proj = nn.Identity()
            self.input_proj.append(proj)
        self.audio_proj = nn.Sequential(nn.Linear(audio_dim, hidden_dim), nn.LayerNorm(hidden_dim))

        self.query_feat = nn.Embedding(num_queries, hidden_dim)  # query content
        self.query_embed = nn.Embedding(num_queries, hidden_dim)  # query position
        self.initial_audio_attention = AttentionLayer(hidden_dim, nheads, dropout, pre_norm)
        self.cross_attention_layers = nn.ModuleList()
        self.self_attention_layers = nn.ModuleList()
        self.audio_attention_layers = nn.ModuleList()
        self.ffn_layers = nn.ModuleList()
        for _ in range(dec_layers):
            self.cross_attention_layers.append(
                AttentionLayer(hidden_dim, nheads, dropout, pre_norm)
            )
            self.self_attention_layers.append(AttentionLayer(hidden_dim, nheads, dropout, pre_norm))
            self.audio_attention_layers.append(
                AttentionLayer(hidden_dim, nheads, dropout, pre_norm)
            )
            self.ffn_layers.append(FFNLayer(hidden_dim, dim_feedforward, dropout, pre_norm))

        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.objectness_head = nn.Linear(hidden_dim, 2)
        self.embed_head = MLP(hidden_dim, hidden_dim, embed_dim, 3)
        self.mask_embed = MLP(hidden_dim, hidden_dim, mask_dim, 3)
        # Built last and only when asked for: the default model's parameters, their
        # initialisation (random stream) and its checkpoints stay as they were.
        self.frame_objectness_head = FrameObjectnessHead(hidden_dim) if frame_objectness else None

    @classmethod
    def from_config(cls, cfg, in_channels: int, mask_dim: int, audio_dim: int):
        td = cfg.MODEL.TRANSFORMER_DECODER
        return {
            "in_channels": in_channels,
            "mask_dim": mask_dim,
            "audio_dim": audio_dim,
            "hidden_dim": td.HIDDEN_DIM,
            "num_queries": td.NUM_QUERIES,
            "nheads": td.NHEADS,
            "dim_feedforward": td.DIM_FEEDFORWARD,
            "dec_layers": td.DEC_LAYERS,
            "dropout": td.DROPOUT,
            "pre_norm": td.PRE_NORM,
            "enforce_input_proj": td.ENFORCE_INPUT_PROJ,
            "embed_dim": td.EMBED_DIM,
            "mask_attn_threshold": td.MASK_ATTN_THRESHOLD,
            "temporal_embed": td.TEMPORAL_EMBED,
            "max_num_frames": td.MAX_NUM_FRAMES,
            "frame_objectness": cfg.MODEL.OVAVSS.PER_FRAME_OBJECTNESS,
        }

    def forward(
        self,
        multi_scale_features: List[torch.Tensor],
        mask_features: torch.Tensor,
        audio: torch.Tensor,
        num_frames: int,
    ) -> Dict[str, object]:
        """
        Args:
            multi_scale_features: ``num_feature_levels`` maps ``(N, C_in, H_i, W_i)``, stride 32
                first.
            mask_features: ``(N, C_m, H4, W4)``.
            audio: ``(B, T, C_a)``.
            num_frames: T.

        Returns:
            dict with ``pred_objectness`` ``(B, Q, 2)`` logits (index 0: sounding object, 1:
            no object), ``pred_embeds`` ``(B, Q, D)``, ``pred_masks`` ``(B, Q, T, H4, W4)`` logits,
            with ``frame_objectness`` ``pred_frame_objectness`` ``(B, Q, T)`` logits (query q is a
            sounding object in frame t), all of the last layer, and ``aux_outputs``,
            ``dec_layers`` dicts with the same keys for the earlier predictions (initial first).
        """
        num_levels = len(multi_scale_features)
        if num_levels != self.num_feature_levels:
            raise ValueError(f"expected {self.num_feature_levels} feature levels, got {num_levels}")
        n = mask_features.shape[0]
        batch = audio.shape[0]
        if audio.shape[1] != num_frames or batch * num_frames != n:
            raise ValueError(
                f"audio {tuple(audio.shape)} does not match {n} frames of {num_frames} per clip"
            )
        # (N, C_m, H4, W4) -> (B, T, C_m, H4, W4)
        mask_features = mask_features.reshape(batch, num_frames, *mask_features.shape[1:])
        frame_pos = self.temporal_embed(num_frames, audio.device, mask_features.dtype)  # (T, C)
        memories, positions, sizes = [], [], []
        for level, x in enumerate(multi_scale_features):
            h, w = x.shape[-2:]
            sizes.append((h, w))
            src = self.input_proj[level](x) + self.level_embed.weight[level][None, :, None, None]
            # (N, C, H, W) -> (B, T*H*W, C)
            memories.append(src.reshape(batch, num_frames, -1, h * w).transpose(2, 3).flatten(1, 2))
            pixel_pos = self.pe_layer(src[:1]).flatten(2).transpose(1, 2)  # (1, H*W, C)
            pos = pixel_pos[:, None] + frame_pos[None, :, None]  # (1, T, H*W, C)
            positions.append(pos.flatten(1, 2).expand(batch, -1, -1))

        audio_tokens = self.audio_proj(audio)  # (B, T, C)
        audio_pos = frame_pos[None].expand(batch, -1, -1)
        query_pos = self.query_embed.weight[None].expand(batch, -1, -1)  # (B, Q, C)
        output = self.query_feat.weight[None].expand(batch, -1, -1)
        output = self.initial_audio_attention(output, query_pos, audio_tokens, audio_pos)

        predictions = []
        prediction, attn_mask = self._predict(output, mask_features, sizes[0], audio_tokens)
        predictions.append(prediction)
        for i in range(self.num_layers):
            level = i % self.num_feature_levels
            output = self.cross_attention_layers[i](
                output, query_pos, memories[level], positions[level], attn_mask
            )
            output = self.self_attention_layers[i](output, query_pos)
            output = self.audio_attention_layers[i](output, query_pos, audio_tokens, audio_pos)
            output = self.ffn_layers[i](output)
            next_size = sizes[(i + 1) % self.num_feature_levels]
            prediction, attn_mask = self._predict(output, mask_features, next_size, audio_tokens)
            predictions.append(prediction)

        out = dict(predictions[-1])
        out["aux_outputs"] = predictions[:-1]
        return out

    def _predict(
        self,
        output: torch.Tensor,
        mask_features: torch.Tensor,
        attn_size,
        audio_tokens: Optional[torch.Tensor] = None,
    ):
        """Heads on the queries, and the attention mask for the next cross-attention.

        Args:
            output: ``(B, Q, C)`` queries.
            mask_features: ``(B, T, C_m, H4, W4)``.
            attn_size: ``(H_i, W_i)`` of the level the next layer attends to.
            audio_tokens: ``(B, T, C)`` projected audio (the per-frame sounding head's input).

        Returns:
            predictions dict (see :meth:`forward`) and a bool attention mask ``(B*h, Q, T*H_i*W_i)``
            (True = not attended).
        """
        decoder_output = self.decoder_norm(output)
        mask_embed = self.mask_embed(decoder_output)  # (B, Q, C_m)
        masks = torch.einsum("bqc,btchw->bqthw", mask_embed, mask_features)
        prediction = {
            "pred_objectness": self.objectness_head(decoder_output),
            "pred_embeds": self.embed_head(decoder_output),
            "pred_masks": masks,
        }
        if self.frame_objectness_head is not None:
            prediction["pred_frame_objectness"] = self.frame_objectness_head(
                decoder_output, audio_tokens
            )
        batch, num_queries, num_frames = masks.shape[:3]
        with torch.no_grad():
            resized = F.interpolate(
                masks.flatten(1, 2), size=attn_size, mode="bilinear", align_corners=False
            )  # (B, Q*T, H_i, W_i)
            attn_mask = resized.sigmoid().view(batch, num_queries, -1) < self.mask_attn_threshold
            # A query whose mask is empty on every frame attends to everything (Mask2Former).
            attn_mask = attn_mask & ~attn_mask.all(-1, keepdim=True)
            attn_mask = attn_mask.repeat_interleave(self.num_heads, dim=0)  # (B*h, Q, T*H*W)
        return prediction, attn_mask
