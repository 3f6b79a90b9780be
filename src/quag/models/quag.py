"""QUAG: Query-centric Audio-Visual Cognition Network (Tu et al., AAAI 2025, https://arxiv.org/abs/2412.13543).

The whole network, top to bottom (reference-anatomy 2.7; paper Figure 2):

1. input embedding: frames ``Linear(1024 -> D)`` + LayerNorm, ASR ``LayerNorm + Linear(384 -> D)``, query
   ``Linear(1024 -> D)`` L2-normalised;
2. MSP (Eq. 1-4): InfoNCE between global V and A, bidirectional cross-attention, ``Linear(2D -> D)`` fusion;
3. QC2 (Eq. 5-8): query-conditioned temporal x channel gate on the AV features plus a self-attention branch;
4. time, moment-mask and (segmentation) boundary embeddings, then two post-LN transformer layers;
5. heads: moment retrieval start/end, moment segmentation next boundary, CLIP4Caption-style caption decoder.

Steps 1-3 do not depend on the moment or boundary masks: :meth:`QuagModel.encode_front` runs them once and
:meth:`QuagModel.encode_context` runs step 4, so a segmentation decoding round costs one ``encode_context``.

Ablations (paper Tables 4, 6, 7) are ``ModelConfig`` switches: ``use_msp=False`` sums V and A; ``use_qc2=False``
gates by the query element-wise (as Joint); ``qc2_gates`` keeps one gate or none; lambda is the loss weight
(``TrainConfig.msp_loss_weight``).
"""

from __future__ import annotations

import torch
from torch import nn

from quag.config import ModelConfig
from quag.models.base import VideoTaskModel
from quag.models.encoders import ContextEmbedding, InputEmbedding
from quag.models.fusion import MSP, QC2
from quag.models.heads import build_task_heads
from quag.models.layers import PostLNTransformerLayer
from quag.models.outputs import (
    FrontOutput,
)


class QuagModel(VideoTaskModel):
    """QUAG for moment retrieval, moment segmentation and step captioning.

    Args:
        config: Architecture; ``config.arch`` must be ``"quag"``.

    Shapes:
        Inputs are a :class:`~quag.data.collate.Batch`: video (B, T, Dv), asr (B, T, Da), query (B, Dq) and
        bool masks (B, T), True = valid. D = H = ``config.hidden_dim``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.arch != "quag":
            raise ValueError(f"QuagModel needs model.arch='quag', got {config.arch!r} (use build_model)")
        self.config = config
        d, heads, dropout = config.hidden_dim, config.num_heads, config.dropout
        self.mask_padding = config.mask_padding
        self.embed = InputEmbedding(config.visual_dim, config.asr_dim, config.query_dim, d)
        # Ablated modules are not built at all (None), so they hold no parameters and take no gradient.
        self.msp: MSP | None = None
        if config.use_msp:
            self.msp = MSP(
                d,
                heads,
                dropout,
                separate=config.msp_separate_cross_attention,
                temperature_init=config.msp_temperature_init,
                temperature_min=config.msp_temperature_min,
                temperature_max=config.msp_temperature_max,
                mask_padding=config.mask_padding,
                attn_dropout=config.attention_dropout,
            )
        self.qc2: QC2 | None = None
        if config.use_qc2:
            self.qc2 = QC2(d, heads, dropout, gates=config.qc2_gates, mask_padding=config.mask_padding)
        self.context = ContextEmbedding(d)
        self.encoder = nn.ModuleList(
            PostLNTransformerLayer(d, heads, config.ffn_dim, dropout, attn_dropout=config.attention_dropout)
            for _ in range(config.num_encoder_layers)
        )
        self.heads = build_task_heads(config, d)

    def encode_front(
        self, video: torch.Tensor, asr: torch.Tensor, query: torch.Tensor, video_mask: torch.Tensor
    ) -> FrontOutput:
        """Input embedding, MSP and QC2: (B, T, Dv), (B, T, Da), (B, Dq), (B, T) -> features (B, T, D)."""
        v, a, q = self.embed(video, asr, query)  # (B, T, D), (B, T, D), (B, D)
        if self.msp is not None:
            av, msp_loss = self.msp(v, a, video_mask)  # Eq. 1-4
        else:
            av, msp_loss = v + a, None  # Table 4 "w/o MSP": plain summation
        # Eq. 5-8, or Table 4 "w/o QC2": element-wise query gating as in Joint.
        x = self.qc2(av, q, video_mask) if self.qc2 is not None else av * q[:, None, :]
        return FrontOutput(features=x, msp_loss=msp_loss)

    def encode_context(
        self,
        front_features: torch.Tensor,
        video_mask: torch.Tensor,
        moment_mask: torch.Tensor,
        boundary_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Add time / moment-mask / boundary embeddings and run the encoder: (B, T, D) -> (B, T, H)."""
        x = front_features + self.context(video_mask, moment_mask, boundary_mask)
        key_mask = video_mask if self.mask_padding else None
        for layer in self.encoder:
            x = layer(x, key_mask)
        return x
