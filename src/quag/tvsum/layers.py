"""Blocks of the TVSum model's QD-DETR switches (docs/tvsum.md, "Switches"); the default model uses none of them
except the two QUAG input embeddings, which are :class:`~quag.models.encoders.InputEmbedding`'s layers built one
stream at a time (same layers, same initialisation order, so a stream can be left out).

QD-DETR's pieces, as its TVSum model builds them (Moon et al., CVPR 2023, code ``qd_detr/model.py``,
``qd_detr/transformer.py``, ``qd_detr/position_encoding.py``, ``qd_detr/start_end_dataset.py``):

- input projection ``LinearLayer`` x 2: ``LN -> Dropout(input_dropout) -> Linear -> ReLU``, then
  ``LN -> Dropout(input_dropout) -> Linear``, for the video and for the text alike;
- time features ("tef"): clip ``i`` of ``N`` gets ``(i / N, (i + 1) / N)``, appended to the video features;
- sine positional encoding (DETR, normalised): position ``cumsum(mask) / n * 2 pi``, sin / cos at frequencies
  ``10000^(2k / H)``, added to queries and keys (never values) of the attention layers; text positions are 0;
- post-LN attention layers (``x = LN(x + Drop(Attn(x + pos, k + pos, v)))``, ``x = LN(x + Drop(FFN(x)))``): its
  T2V layer lets the video cross-attend to the text tokens, its encoder layers self-attend.

Shapes: B batch, T clips, L title tokens, H width; masks are bool, True = real.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from quag.models.encoders import BERT_NORM_EPS
from quag.models.layers import Dropout, MultiHeadAttention, attention_mask


def quag_visual_embedding(in_dim: int, dim: int) -> nn.Sequential:
    """QUAG's frame embedding (``InputEmbedding.video_proj`` + ``video_norm``): ``Linear -> LayerNorm(eps 1e-12)``."""
    return nn.Sequential(nn.Linear(in_dim, dim), nn.LayerNorm(dim, eps=BERT_NORM_EPS))


def quag_audio_embedding(in_dim: int, dim: int) -> nn.Sequential:
    """QUAG's second-stream embedding (``InputEmbedding.asr_norm`` + ``asr_proj``): ``LayerNorm -> Linear``."""
    return nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, dim))


def qd_detr_projection(in_dim: int, dim: int, input_dropout: float) -> nn.Sequential:
    """QD-DETR's two ``LinearLayer`` input projection (``n_input_proj = 2``): dropout before each Linear."""
    return nn.Sequential(
        nn.LayerNorm(in_dim),
        Dropout(input_dropout),
        nn.Linear(in_dim, dim),
        nn.ReLU(),
        nn.LayerNorm(dim),
        Dropout(input_dropout),
        nn.Linear(dim, dim),
    )


def time_edge_features(video_mask: torch.Tensor) -> torch.Tensor:
    """QD-DETR's 2 time features per clip: ``(i / N, (i + 1) / N)`` for clip ``i`` of a video of ``N`` clips.

    Args:
        video_mask: (B, T) bool, a prefix of each row True.

    Returns:
        (B, T, 2) float, 0 on padding.
    """
    n = video_mask.sum(1, keepdim=True).clamp(min=1).float()  # (B, 1)
    start = torch.arange(video_mask.shape[1], device=video_mask.device)[None, :] / n  # (B, T)
    tef = torch.stack([start, start + 1.0 / n], dim=-1)  # (B, T, 2)
    return tef * video_mask[..., None]


def sine_position_encoding(video_mask: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """DETR's normalised 1-D sine encoding as QD-DETR applies it to the clips (``PositionEmbeddingSine``).

    Args:
        video_mask: (B, T) bool.
        dim: H, the encoding width (even).
        temperature: Frequency base.

    Returns:
        (B, T, H) float; padded clips repeat the last position's value (they are masked in attention).
    """
    x = video_mask.float().cumsum(1)  # (B, T): 1 .. n on real clips
    x = x / (x[:, -1:] + 1e-6) * (2 * math.pi)  # (B, T) in (0, 2 pi]
    k = torch.arange(dim, device=video_mask.device)
    freq = temperature ** (2 * torch.div(k, 2, rounding_mode="floor") / dim)  # (H,)
    angle = x[..., None] / freq  # (B, T, H)
    return torch.stack([angle[..., 0::2].sin(), angle[..., 1::2].cos()], dim=3).flatten(2)  # (B, T, H)


class PositionalAttentionLayer(nn.Module):
    """QD-DETR's post-LN attention layer: positions on queries and keys, FFN, residual dropout.

    Self-attention (``context=None``: QD-DETR's encoder layer) or cross-attention to ``context`` (its T2V layer,
    the clips attending to the title tokens, whose positions are 0).

    Args:
        dim: H.
        num_heads: Heads.
        ffn_dim: FFN hidden width.
        dropout: Residual and FFN dropout.
        attn_dropout: Attention-probability dropout.

    Shapes:
        - x: (B, T, H); key_mask: (B, T) bool; pos: (B, T, H) or None.
        - context: (B, L, H) or None; context_mask: (B, L) bool.
        - output: (B, T, H).
    """

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, dropout: float, attn_dropout: float) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(dim, num_heads, dropout=attn_dropout)
        self.attn_norm = nn.LayerNorm(dim)
        self.ffn_in = nn.Linear(dim, ffn_dim)
        self.ffn_out = nn.Linear(ffn_dim, dim)
        self.ffn_norm = nn.LayerNorm(dim)
        self.dropout = Dropout(dropout)
        self.inner_dropout = Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        key_mask: torch.Tensor,
        pos: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        query = x if pos is None else x + pos  # (B, T, H)
        if context is None:  # self-attention: keys carry the positions, values do not
            keys, values, mask = query, x, key_mask
        else:  # cross-attention to the title tokens (text positions are 0 in QD-DETR)
            keys, values = context, context
            mask = context_mask if context_mask is not None else context.new_ones(context.shape[:2], dtype=torch.bool)
        k = self.attn.split_heads(self.attn.k_proj(keys))  # (B, nh, S, hd)
        v = self.attn.split_heads(self.attn.v_proj(values))  # (B, nh, S, hd)
        x = self.attn_norm(x + self.dropout(self.attn.attend(query, k, v, attention_mask(mask))))
        h = self.ffn_out(self.inner_dropout(F.relu(self.ffn_in(x))))
        return self.ffn_norm(x + self.dropout(h))
