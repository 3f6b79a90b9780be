"""QUAG for query-based video summarization on TVSum: per-clip saliency from I3D, PANN and a CLIP title.

Top to bottom (paper Figure 2 with the HiREST heads replaced by a saliency head; supplementary "Implementation
Details": H = 256, 2 attention layers, 8 heads). Steps 1-3 are QUAG's trunk with its ablation switches, the same
code as on HiREST (:mod:`quag.models.fusion`):

1. input embedding (:class:`~quag.models.encoders.InputEmbedding`): visual ``Linear(2048 -> H)`` + LayerNorm,
   PANN audio (the paper's R_a) ``LayerNorm + Linear(2048 -> H)``, title ``Linear(512 -> H)`` L2-normalised;
   dropout on the raw inputs first (QD-DETR's ``input_dropout``, our regulariser for 4 training videos);
2. MSP (Eq. 1-4): InfoNCE between the pooled V and A of the batch's videos, bidirectional cross-attention,
   ``Linear(2H -> H)`` fusion ("w/o MSP": V + A). It does not see the query, so a negative-query pass reuses
   its output;
3. QC2 (Eq. 5-8): the title gates the audio-visual features over time and channels and is injected back
   ("w/o QC2": element-wise gating by the title);
4. QUAG's time embedding (the time part of :class:`~quag.models.encoders.ContextEmbedding`: relative clip time
   in [-1, 1] through ``Linear(1 -> H), Tanh, Linear(H -> H)``; its moment and boundary embeddings have no
   meaning here, the whole video being the region of interest) and two post-LN encoder layers;
5. saliency head ``Linear(H -> 1)``: one logit per 2-s clip (QUAG's heads are single linear maps, Eq. 9-10).

Shape letters as in :mod:`quag.models`: B batch, T clips, H = ``hidden_dim`` (the width of the temporal encoder
and the head; QUAG fuses at H too), N titles, Dv, Da, Dq input widths. Masks are bool, True = a real clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from quag.models.encoders import InputEmbedding
from quag.models.fusion import MSP, QC2, fuse_audio_visual, fuse_query
from quag.models.layers import Dropout, PostLNTransformerLayer, relative_time
from quag.tvsum.config import TVSumModelConfig


@dataclass
class SaliencyOutput:
    """Output of :class:`TVSumQuag`.

    Attributes:
        scores: (B, T) saliency logits, finite on padding (mask them in losses and ranking).
        msp_loss: Scalar L_msp (Eq. 2), or None without MSP.
        negative_scores: (B, T) logits of the same videos under another video's title, when asked for.
    """

    scores: torch.Tensor
    msp_loss: torch.Tensor | None
    negative_scores: torch.Tensor | None = None


class TVSumQuag(nn.Module):
    """QUAG with a per-clip saliency head (module docstring).

    Args:
        config: Architecture.

    Shapes:
        - visual: (B, T, Dv); audio: (B, T, Da); query: (B, Dq); video_mask: (B, T) bool.
        - negative_query: optional (B, Dq), a mismatched title per video.
        - output: :class:`SaliencyOutput` with (B, T) scores.
    """

    def __init__(self, config: TVSumModelConfig) -> None:
        super().__init__()
        self.config = config
        h, heads, dropout = config.hidden_dim, config.num_heads, config.dropout
        self.input_dropout = Dropout(config.input_dropout)
        self.embed = InputEmbedding(config.visual_dim, config.audio_dim, config.query_dim, h)
        # Ablated modules are None: fuse_audio_visual and fuse_query then run the paper's ablations.
        self.msp = MSP(h, heads, dropout, attn_dropout=config.attention_dropout) if config.use_msp else None
        self.qc2 = QC2(h, heads, dropout) if config.use_qc2 else None
        self.time_embed = nn.Sequential(nn.Linear(1, h), nn.Tanh(), nn.Linear(h, h))
        self.encoder = nn.ModuleList(
            PostLNTransformerLayer(h, heads, config.ffn_dim, dropout, attn_dropout=config.attention_dropout)
            for _ in range(config.num_encoder_layers)
        )
        self.saliency_head = nn.Linear(h, 1)

    def forward(
        self,
        visual: torch.Tensor,
        audio: torch.Tensor,
        query: torch.Tensor,
        video_mask: torch.Tensor,
        negative_query: torch.Tensor | None = None,
    ) -> SaliencyOutput:
        b = query.shape[0]
        queries = query if negative_query is None else torch.cat([query, negative_query])  # (B or 2B, Dq)
        # Input embedding of the dropped-out raw features (the projection is per title: both titles at once)
        v, a, q = self.embed(self.input_dropout(visual), self.input_dropout(audio), queries)  # (B,T,H) x2, (N,H)
        # MSP (Eq. 1-4): query-independent audio-visual features and L_msp
        av, msp_loss = fuse_audio_visual(self.msp, v, a, video_mask)  # (B, T, H)
        scores = self.score(av, q[:b], video_mask)  # (B, T)
        # The negative pass shares the embedding and MSP output: only QC2, the encoder and the head rerun.
        negative_scores = None if negative_query is None else self.score(av, q[b:], video_mask)  # (B, T)
        return SaliencyOutput(scores=scores, msp_loss=msp_loss, negative_scores=negative_scores)

    def score(self, av: torch.Tensor, q: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
        """QC2, time embedding, encoder and head: (B, T, H) features and an embedded title (B, H) -> logits (B, T)."""
        x = fuse_query(self.qc2, av, q, video_mask)  # (B, T, H), QC2 (Eq. 5-8)
        x = x + self.time_embed(relative_time(video_mask).to(x.dtype))  # (B, T, H)
        for layer in self.encoder:
            x = layer(x, video_mask)  # (B, T, H)
        return self.saliency_head(x).squeeze(-1)  # (B, T)
