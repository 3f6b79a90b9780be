"""Input projections, the context embeddings and the CLIP4Caption visual encoder of the Joint baseline.

The authors' layers are described in docs/models.md (Joint and QUAG input embeddings) and every departure from
them in docs/reference.md. On HiREST the frame, transcript and query features are precomputed (EVA-CLIP-g 1024-d
frames and query, MiniLM 384-d per-second transcript embeddings).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from quag.models.layers import Dropout, Linear, PostLNTransformerLayer, relative_time

BERT_INIT_STD = 0.02
"""CLIP4Caption / BERT initialiser range: N(0, 0.02) weights, zero biases."""
BERT_NORM_EPS = 1e-12
"""TF-style LayerNorm epsilon used by every CLIP4Caption LayerNorm."""


class InputEmbedding(nn.Module):
    """Project frames, audio and the query into one width (paper "Multi-modal Input Embedding").

    The second stream is the paper's audio representation R_a: on HiREST the speech transcript's per-second
    MiniLM embeddings, on TVSum PANN audio embeddings.

    - video: ``Linear(Dv -> D)`` then CLIP4Caption's ``normalize_video`` (LayerNorm, eps 1e-12); with
      ``visual_dim=0`` (a speech-only model, no frame features) the video stream is all zeros and no video
      parameters are built;
    - audio: ``LayerNorm(Da)`` then ``Linear(Da -> D)`` (silent or padded zero rows become the projected
      LayerNorm bias, not zero, exactly as in the reference);
    - query: ``Linear(Dq -> D)`` then L2 normalisation.

    Args:
        visual_dim: Dv, frame-feature width; 0 = no visual stream.
        audio_dim: Da, audio-feature width (HiREST: the transcript embeddings, ``ModelConfig.transcript_dim``).
        query_dim: Dq, query-embedding width.
        dim: D, output width (QUAG: H; Joint: its fusion width E).

    Shapes:
        - video: (B, T, Dv) (Dv may be 0); audio: (B, T, Da); query: (N, Dq), usually N = B.
        - output: video (B, T, D), audio (B, T, D), query (N, D).
    """

    def __init__(self, visual_dim: int, audio_dim: int, query_dim: int, dim: int) -> None:
        super().__init__()
        if visual_dim < 0:
            raise ValueError(f"visual_dim must be >= 0 (0 = speech-only), got {visual_dim}")
        self.video_proj: nn.Linear | None = None
        self.video_norm: nn.LayerNorm | None = None
        if visual_dim > 0:
            self.video_proj = Linear(visual_dim, dim)
            self.video_norm = nn.LayerNorm(dim, eps=BERT_NORM_EPS)
        # the "asr_" names keep the state-dict keys of saved checkpoints and of reference_compat's key map
        self.asr_norm = nn.LayerNorm(audio_dim)
        self.asr_proj = Linear(audio_dim, dim)
        self.query_proj = Linear(query_dim, dim)

    def forward(
        self, video: torch.Tensor, audio: torch.Tensor, query: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        a = self.asr_proj(self.asr_norm(audio))  # (B, T, D)
        if self.video_proj is None or self.video_norm is None:
            v = a.new_zeros(a.shape)  # speech-only: a silent visual stream, the rest of the network unchanged
        else:
            v = self.video_norm(self.video_proj(video))  # (B, T, D)
        q = F.normalize(self.query_proj(query), dim=-1)  # (N, D)
        return v, a, q


class ContextEmbedding(nn.Module):
    """Time, moment-mask and boundary embeddings added before the temporal encoder.

    - time: per-sample normalised frame time in [-1, 1] (0 on padding) through ``Linear(1 -> D), Tanh,
      Linear(D -> D)``;
    - moment mask: ``Embedding(2, D)`` indexed by the task region (1 inside, 0 outside or padding);
    - boundary (moment segmentation only): ``Embedding(2, D)`` indexed by the previous-boundary mask.

    Args:
        dim: D, width.

    Shapes:
        - video_mask, moment_mask, boundary_mask: (B, T) bool.
        - output: (B, T, D), to be added to the features.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.time_mlp = nn.Sequential(Linear(1, dim), nn.Tanh(), Linear(dim, dim))
        self.mask_embed = nn.Embedding(2, dim)
        self.boundary_embed = nn.Embedding(2, dim)

    def forward(
        self, video_mask: torch.Tensor, moment_mask: torch.Tensor, boundary_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        out = self.time_mlp(relative_time(video_mask).to(self.mask_embed.weight.dtype))  # (B, T, D)
        out = out + self.mask_embed((moment_mask & video_mask).long())
        if boundary_mask is not None:
            out = out + self.boundary_embed(boundary_mask.long())
        return out


class Clip4CaptionVisualEncoder(nn.Module):
    """CLIP4Caption's visual encoder as the Joint baseline uses it (docs/models.md).

    ``Linear(E -> H)`` ("word_embeddings") plus learned positions 0..T-1, LayerNorm (eps 1e-12), dropout, then
    BERT post-LN layers (erf-GELU FFN). The reference's unused pooler is not built.

    Args:
        in_dim: E, fused input width (512 in the Joint baseline).
        dim: H, encoder width (768).
        num_layers: BERT layers (2).
        num_heads: Attention heads (12).
        ffn_dim: FFN width (3072).
        max_positions: Learned positions (2048); longer inputs raise ``ValueError``.
        dropout: Hidden and attention dropout (0.1).
        attn_dropout: Attention-probability dropout (default: ``dropout``).

    Shapes:
        - x: (B, T, E); key_mask: (B, T) bool or None; output: (B, T, H).
    """

    def __init__(
        self,
        in_dim: int,
        dim: int,
        num_layers: int,
        num_heads: int,
        ffn_dim: int,
        max_positions: int,
        dropout: float,
        attn_dropout: float | None = None,
    ) -> None:
        super().__init__()
        self.input_proj = Linear(in_dim, dim)
        self.position_embeddings = nn.Embedding(max_positions, dim)
        self.embed_norm = nn.LayerNorm(dim, eps=BERT_NORM_EPS)
        self.dropout = Dropout(dropout)
        self.layers = nn.ModuleList(
            PostLNTransformerLayer(
                dim,
                num_heads,
                ffn_dim,
                dropout,
                activation="gelu",
                norm_eps=BERT_NORM_EPS,
                ffn_inner_dropout=False,
                init_std=BERT_INIT_STD,
                attn_dropout=attn_dropout,
            )
            for _ in range(num_layers)
        )
        for m in (self.input_proj, self.position_embeddings):
            nn.init.normal_(m.weight, std=BERT_INIT_STD)
        nn.init.zeros_(self.input_proj.bias)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        t = x.shape[1]
        if t > self.position_embeddings.num_embeddings:
            raise ValueError(
                f"{t} frames exceed the Joint encoder's {self.position_embeddings.num_embeddings} learned positions;"
                " raise model.joint_max_positions or shorten the input"
            )
        pos = self.position_embeddings.weight[:t]  # (T, H)
        h = self.dropout(self.embed_norm(self.input_proj(x) + pos))  # (B, T, H)
        for layer in self.layers:
            h = layer(h, key_mask)
        return h
