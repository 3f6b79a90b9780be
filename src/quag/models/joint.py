"""The HiREST "Joint" baseline (Zala et al., CVPR 2023; reference-anatomy 2.2), sharing QUAG's heads and decoder.

Top to bottom, at fusion width E (512) and encoder width H (768):

1. frames ``Linear(1024 -> E)`` + LayerNorm (CLIP4Caption's ``normalize_video``), query ``Linear(1024 -> E)``
   L2-normalised, ASR ``LayerNorm + Linear(384 -> E)``;
2. fusion: ``video * query + asr`` (element-wise gating, then summation);
3. boundary (segmentation), time and moment-mask embeddings;
4. the CLIP4Caption visual encoder: ``Linear(E -> H)`` + learned positions (2048), LayerNorm, 2 BERT layers;
5. the same heads and caption decoder as QUAG.

The "front end" (:meth:`JointModel.encode_front`) is steps 1-2; everything else is in
:meth:`JointModel.encode_context`. The model has no contrastive loss (``msp_loss`` is always None). The QUAG
ablation switches of :class:`~quag.config.ModelConfig` do not apply and are ignored.
"""

from __future__ import annotations

import torch

from quag.config import ModelConfig
from quag.models.base import VideoTaskModel
from quag.models.encoders import Clip4CaptionVisualEncoder, ContextEmbedding, InputEmbedding
from quag.models.heads import build_task_heads
from quag.models.outputs import (
    FrontOutput,
)


class JointModel(VideoTaskModel):
    """HiREST's Joint baseline for moment retrieval, moment segmentation and step captioning.

    Args:
        config: Architecture; ``config.arch`` must be ``"joint"``. E = ``joint_fusion_dim``,
            H = ``hidden_dim``.

    Shapes:
        Inputs are a :class:`~quag.data.collate.Batch` (see :class:`~quag.models.quag.QuagModel`).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.arch != "joint":
            raise ValueError(f"JointModel needs model.arch='joint', got {config.arch!r} (use build_model)")
        self.config = config
        e, h = config.joint_fusion_dim, config.hidden_dim
        self.mask_padding = config.mask_padding
        self.embed = InputEmbedding(config.visual_dim, config.asr_dim, config.query_dim, e)
        self.context = ContextEmbedding(e)
        self.visual_encoder = Clip4CaptionVisualEncoder(
            e,
            h,
            config.num_encoder_layers,
            config.num_heads,
            config.ffn_dim,
            config.joint_max_positions,
            config.dropout,
            attn_dropout=config.attention_dropout,
        )
        self.heads = build_task_heads(config, h)

    def encode_front(
        self, video: torch.Tensor, asr: torch.Tensor, query: torch.Tensor, video_mask: torch.Tensor
    ) -> FrontOutput:
        """Projections and query gating: (B, T, Dv), (B, T, Da), (B, Dq) -> features (B, T, E).

        ``video_mask`` is unused here (every operation is per frame); it keeps the interface of QUAG.
        """
        v, a, q = self.embed(video, asr, query)  # (B, T, E), (B, T, E), (B, E)
        return FrontOutput(features=v * q[:, None, :] + a, msp_loss=None)

    def encode_context(
        self,
        front_features: torch.Tensor,
        video_mask: torch.Tensor,
        moment_mask: torch.Tensor,
        boundary_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Add the context embeddings and run the CLIP4Caption visual encoder: (B, T, E) -> (B, T, H)."""
        x = front_features + self.context(video_mask, moment_mask, boundary_mask)
        return self.visual_encoder(x, video_mask if self.mask_padding else None)
