"""QUAG for query-based video summarization on TVSum: per-clip saliency from I3D, PANN and a CLIP title.

Top to bottom (paper Figure 2 with the HiREST heads replaced by a saliency head; supplementary "Implementation
Details": H = 256, 2 attention layers, 8 heads). Steps 1-3 are QUAG's trunk with its ablation switches, the same
code as on HiREST (:mod:`quag.models.fusion`):

1. input embedding (the layers of :class:`~quag.models.encoders.InputEmbedding`, one stream at a time): visual
   ``Linear(2048 -> H)`` + LayerNorm, PANN audio (the paper's R_a) ``LayerNorm + Linear(2048 -> H)``, title
   ``Linear(512 -> H)`` L2-normalised; dropout on the raw inputs first (QD-DETR's ``input_dropout``, our
   regulariser for 4 training videos);
2. MSP (Eq. 1-4): InfoNCE between the pooled V and A of the batch's videos, bidirectional cross-attention,
   ``Linear(2H -> H)`` fusion ("w/o MSP": V + A). It does not see the query, so a negative-query pass reuses
   its output;
3. QC2 (Eq. 5-8): the title gates the audio-visual features over time and channels and is injected back
   ("w/o QC2": element-wise gating by the title);
4. QUAG's time embedding (the time part of :class:`~quag.models.encoders.ContextEmbedding`: relative clip time
   in [-1, 1] through ``Linear(1 -> H), Tanh, Linear(H -> H)``; its moment and boundary embeddings have no
   meaning here, the whole video being the region of interest) and two post-LN encoder layers;
5. saliency head ``Linear(H -> 1)``: one logit per 2-s clip (QUAG's heads are single linear maps, Eq. 9-10).

Switches towards QD-DETR's TVSum model (:class:`~quag.tvsum.config.TVSumModelConfig`, docs/tvsum.md; the blocks
are in :mod:`quag.tvsum.layers`), each replacing one step:

- ``dropout_scheme=qd_detr`` (step 1): every stream, title included, through QD-DETR's two-layer projection with
  dropout before each Linear; attention-probability dropout ``dropout`` wherever this module builds attention;
- ``use_audio=false`` (steps 1-2): no audio stream, no MSP; V goes straight to QC2;
- ``query_input=tokens`` (before step 3): the clips cross-attend to the projected title tokens (QD-DETR's T2V
  layer), and QC2 gets the tokens' masked mean as R_t;
- ``position=qd_detr`` (steps 1 and 4): 2 time features appended to the visual input, sine encodings on queries
  and keys of the title cross-attention and the encoder layers, no time MLP;
- ``saliency_head=global_token`` (step 5): a learned token joins the encoder; clip scores are
  ``<W1 x_t, W2 g> / sqrt(H)``;
- ``init=xavier`` (steps 2-4; the default, where ``pytorch`` keeps each layer's own): every weight matrix of MSP,
  QC2, the title cross-attention and the encoder drawn again Xavier-uniform, as QD-DETR initialises its
  transformer.

Shape letters as in :mod:`quag.models`: B batch, T clips, H = ``hidden_dim`` (the width of the temporal encoder
and the head; QUAG fuses at H too), L title tokens, Dv, Da, Dq input widths. Masks are bool, True = real.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from quag.models.fusion import MSP, QC2, fuse_audio_visual, fuse_query
from quag.models.layers import Dropout, PostLNTransformerLayer, masked_mean, relative_time
from quag.tvsum.config import TVSumModelConfig
from quag.tvsum.layers import (
    PositionalAttentionLayer,
    qd_detr_projection,
    quag_audio_embedding,
    quag_visual_embedding,
    sine_position_encoding,
    time_edge_features,
)


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
        - visual: (B, T, Dv); audio: (B, T, Da), or None with ``use_audio=false`` (never read then);
          video_mask: (B, T) bool.
        - query: (B, Dq) pooled title, or with ``query_input=tokens`` (B, L, Dq) title tokens and
          query_mask (B, L) bool.
        - negative_query (and negative_query_mask): optional, a mismatched title per video, shaped as query.
        - output: :class:`SaliencyOutput` with (B, T) scores.
    """

    def __init__(self, config: TVSumModelConfig) -> None:
        super().__init__()
        self.config = config
        h, heads, dropout = config.hidden_dim, config.num_heads, config.dropout
        qd_dropout = config.dropout_scheme == "qd_detr"
        attn_dropout = dropout if qd_dropout else config.attention_dropout
        visual_in = config.visual_dim + (2 if config.position == "qd_detr" else 0)  # + QD-DETR's time features
        # Step 1 (built in InputEmbedding's order, so the default model's initialisation is unchanged)
        self.input_dropout = Dropout(0.0 if qd_dropout else config.input_dropout)
        if qd_dropout:
            self.visual_embed = qd_detr_projection(visual_in, h, config.input_dropout)
        else:
            self.visual_embed = quag_visual_embedding(visual_in, h)
        self.audio_embed: nn.Module | None = None
        if config.use_audio:
            self.audio_embed = (
                qd_detr_projection(config.audio_dim, h, config.input_dropout)
                if qd_dropout
                else quag_audio_embedding(config.audio_dim, h)
            )
        self.title_embed = qd_detr_projection(config.query_dim, h, config.input_dropout) if qd_dropout else None
        self.title_proj = None if qd_dropout else nn.Linear(config.query_dim, h)
        # Steps 2-3; ablated modules are None: fuse_audio_visual and fuse_query then run the paper's ablations.
        self.msp = MSP(h, heads, dropout, attn_dropout=attn_dropout) if config.use_msp else None
        self.qc2 = QC2(h, heads, dropout) if config.use_qc2 else None
        # Step 4
        self.time_embed = (
            nn.Sequential(nn.Linear(1, h), nn.Tanh(), nn.Linear(h, h)) if config.position == "time_mlp" else None
        )
        self.encoder = nn.ModuleList(
            PostLNTransformerLayer(h, heads, config.ffn_dim, dropout, attn_dropout=attn_dropout)
            if config.position == "time_mlp"
            else PositionalAttentionLayer(h, heads, config.ffn_dim, dropout, attn_dropout)
            for _ in range(config.num_encoder_layers)
        )
        # Step 5
        self.saliency_head = nn.Linear(h, 1) if config.saliency_head == "linear" else None
        # Switch-only modules, built last so they never shift the default model's initialisation
        self.title_cross_attn = (
            PositionalAttentionLayer(h, heads, config.ffn_dim, dropout, attn_dropout)
            if config.query_input == "tokens"
            else None
        )
        self.global_token: nn.Parameter | None = None
        self.global_pos: nn.Parameter | None = None
        if config.saliency_head == "global_token":
            self.global_token = nn.Parameter(torch.randn(h))  # QD-DETR's global_rep_token
            self.global_pos = nn.Parameter(torch.randn(h)) if config.position == "qd_detr" else None
            self.clip_proj, self.global_proj = nn.Linear(h, h), nn.Linear(h, h)  # its saliency_proj1 / 2
        if config.init == "xavier":  # DETR style: every weight matrix of the attention trunk, after construction
            for trunk in (self.msp, self.qc2, self.title_cross_attn, self.encoder):
                for p in () if trunk is None else trunk.parameters():
                    if p.dim() > 1:
                        nn.init.xavier_uniform_(p)

    def forward(
        self,
        visual: torch.Tensor,
        audio: torch.Tensor | None,
        query: torch.Tensor,
        video_mask: torch.Tensor,
        negative_query: torch.Tensor | None = None,
        query_mask: torch.Tensor | None = None,
        negative_query_mask: torch.Tensor | None = None,
    ) -> SaliencyOutput:
        b = query.shape[0]
        pos = None  # (B, T, H) sine encodings with position=qd_detr
        if self.config.position == "qd_detr":
            visual = torch.cat([visual, time_edge_features(video_mask).to(visual.dtype)], dim=-1)  # (B, T, Dv+2)
            pos = sine_position_encoding(video_mask, self.config.hidden_dim).to(visual.dtype)
        # 1. Input embedding of the dropped-out raw features (visual first, then audio: the dropout draw order)
        v = self.visual_embed(self.input_dropout(visual))  # (B, T, H)
        a = None if self.audio_embed is None else self.audio_embed(self.input_dropout(audio))  # (B, T, H)
        # Both titles are embedded at once (the negative pass shares the projection)
        titles = query if negative_query is None else torch.cat([query, negative_query])  # (B or 2B, [L,] Dq)
        q = self.embed_title(titles)  # (B or 2B, [L,] H)
        # 2. MSP (Eq. 1-4): query-independent audio-visual features and L_msp (video only without audio)
        av, msp_loss = (v, None) if a is None else fuse_audio_visual(self.msp, v, a, video_mask)  # (B, T, H)
        scores = self.score(av, q[:b], query_mask, video_mask, pos)  # (B, T)
        # The negative pass shares the embedding and MSP output: only steps 3-5 rerun.
        negative_scores = None
        if negative_query is not None:
            negative_scores = self.score(av, q[b:], negative_query_mask, video_mask, pos)  # (B, T)
        return SaliencyOutput(scores=scores, msp_loss=msp_loss, negative_scores=negative_scores)

    def embed_title(self, titles: torch.Tensor) -> torch.Tensor:
        """Pooled (N, Dq) or token (N, L, Dq) title features -> (N, [L,] H); unit-norm in the QUAG scheme."""
        if self.title_embed is not None:  # dropout_scheme=qd_detr
            return self.title_embed(titles)
        assert self.title_proj is not None
        return F.normalize(self.title_proj(titles), dim=-1)

    def score(
        self,
        av: torch.Tensor,
        title: torch.Tensor,
        title_mask: torch.Tensor | None,
        video_mask: torch.Tensor,
        pos: torch.Tensor | None,
    ) -> torch.Tensor:
        """Steps 3-5 for one title per video: (B, T, H) features, (B, H) or (B, L, H) title -> logits (B, T)."""
        x, r_t = av, title
        if self.title_cross_attn is not None:  # query_input=tokens: QD-DETR's T2V layer, then R_t = token mean
            x = self.title_cross_attn(x, video_mask, pos=pos, context=title, context_mask=title_mask)  # (B, T, H)
            r_t = masked_mean(title, title_mask)  # (B, H)
        x = fuse_query(self.qc2, x, r_t, video_mask)  # (B, T, H), QC2 (Eq. 5-8)
        if self.time_embed is not None:
            x = x + self.time_embed(relative_time(video_mask).to(x.dtype))  # (B, T, H)
        mask = video_mask
        if self.global_token is not None:  # the saliency token goes first (QD-DETR's global_rep_token)
            g = self.global_token.expand(x.shape[0], 1, -1)  # (B, 1, H)
            x, mask = torch.cat([g, x], 1), torch.cat([mask.new_ones(mask.shape[0], 1), mask], 1)  # (B, 1+T, ...)
            if pos is not None and self.global_pos is not None:
                pos = torch.cat([self.global_pos.expand(x.shape[0], 1, -1), pos], 1)  # (B, 1+T, H)
        for layer in self.encoder:
            x = layer(x, mask) if pos is None else layer(x, mask, pos=pos)  # (B, [1+]T, H)
        if self.saliency_head is not None:
            return self.saliency_head(x).squeeze(-1)  # (B, T)
        g, x = x[:, 0], x[:, 1:]  # (B, H), (B, T, H)
        return (self.clip_proj(x) * self.global_proj(g)[:, None, :]).sum(-1) / math.sqrt(x.shape[-1])  # (B, T)
