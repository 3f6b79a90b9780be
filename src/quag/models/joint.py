"""The HiREST "Joint" baseline (Zala et al., CVPR 2023; docs/models.md), sharing QUAG's heads and decoder.

Top to bottom, as :meth:`JointModel.forward` runs it, at fusion width E (``joint_fusion_dim``, 512) and encoder
width H (``hidden_dim``, 768):

1. frames ``Linear(1024 -> E)`` + LayerNorm (CLIP4Caption's ``normalize_video``), query ``Linear(1024 -> E)``
   L2-normalised, transcript ``LayerNorm + Linear(384 -> E)``;
2. fusion: ``video * query + transcript`` (element-wise gating, then summation);
3. boundary (segmentation), time and moment-mask embeddings;
4. the CLIP4Caption visual encoder: ``Linear(E -> H)`` + learned positions (2048), LayerNorm, 2 BERT layers;
5. the same heads and caption decoder as QUAG.

For decoding, :meth:`JointModel.encode_front` runs steps 1-2 and :meth:`JointModel.encode_context` steps 3-4.
The model has no contrastive loss (``msp_loss`` is always None). The QUAG ablation switches of
:class:`~quag.config.ModelConfig` do not apply and are ignored.
"""

from __future__ import annotations

import torch
from torch import nn

from quag.config import ModelConfig
from quag.data.collate import Batch
from quag.models.decoder import StepCaptionDecoder
from quag.models.encoders import Clip4CaptionVisualEncoder, ContextEmbedding, InputEmbedding
from quag.models.heads import build_task_heads, task_output
from quag.models.outputs import EncoderOutput, FrontOutput, TaskOutput


class JointModel(nn.Module):
    """HiREST's Joint baseline for moment retrieval, moment segmentation and step captioning.

    Args:
        config: Architecture; ``config.arch`` must be ``"joint"``. E = ``joint_fusion_dim`` is the fusion width;
            H = ``hidden_dim`` is the width of the temporal encoder and the heads.

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
        self.embed = InputEmbedding(config.visual_dim, config.transcript_dim, config.query_dim, e)
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

    def forward(self, batch: Batch) -> TaskOutput:
        """Training forward pass for ``batch.task``; logits are finite at padded positions (see outputs)."""
        mask = batch.video_mask  # (B, T)
        # Input projections at the fusion width E: frames, transcript, query
        v, a, q = self.embed(batch.video, batch.transcript, batch.query_embedding)  # (B, T, E), (B, T, E), (B, E)
        # Fusion: the query gates the frames element-wise, then the transcript is added
        x = v * q[:, None, :] + a  # (B, T, E)
        # Time, moment-mask and boundary embeddings, then the CLIP4Caption visual encoder (E -> H)
        x = x + self.context(mask, batch.moment_mask, batch.boundary_mask)  # (B, T, E)
        h = self.visual_encoder(x, mask if self.mask_padding else None)  # (B, T, H)
        # Head of batch.task: start/end, next boundary or caption tokens (the same heads as QUAG)
        return task_output(self.heads, batch, h, None)

    # forward, split in two for decoding (quag.inference): the front end runs once per video, the context part
    # once per segmentation round.

    def encode_front(
        self,
        video: torch.Tensor,
        transcript: torch.Tensor,
        query_embedding: torch.Tensor,
        video_mask: torch.Tensor,
        with_msp_loss: bool = True,
    ) -> FrontOutput:
        """Projections and query gating: (B, T, Dv), (B, T, Da), (B, Dq) -> features (B, T, E).

        ``video_mask`` and ``with_msp_loss`` are unused here (every operation is per frame, and there is no
        contrastive loss); they keep the interface of QUAG.
        """
        v, a, q = self.embed(video, transcript, query_embedding)  # (B, T, E), (B, T, E), (B, E)
        return FrontOutput(features=v * q[:, None, :] + a, msp_loss=None)

    def encode_context(
        self,
        front_features: torch.Tensor,
        video_mask: torch.Tensor,
        moment_mask: torch.Tensor,
        boundary_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Add the context embeddings and run the CLIP4Caption visual encoder: (B, T, E) -> (B, T, H)."""
        x = front_features + self.context(video_mask, moment_mask, boundary_mask)  # (B, T, E)
        return self.visual_encoder(x, video_mask if self.mask_padding else None)

    def encode(self, batch: Batch) -> EncoderOutput:
        """Front end and context encoder for a batch: hidden (B, T, H); ``msp_loss`` is None."""
        front = self.encode_front(batch.video, batch.transcript, batch.query_embedding, batch.video_mask)
        hidden = self.encode_context(front.features, batch.video_mask, batch.moment_mask, batch.boundary_mask)
        return EncoderOutput(hidden=hidden, msp_loss=None)

    @property
    def decoder(self) -> StepCaptionDecoder:
        """The step-caption decoder (``heads["step_captioning"]``)."""
        return self.heads["step_captioning"]  # type: ignore[return-value]

    def moment_logits(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Start and end logits (B, T) each from the encoder output (B, T, H)."""
        return self.heads["moment_retrieval"](h)

    def segment_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Next-boundary logits (B, T) from the encoder output (B, T, H)."""
        return self.heads["moment_segmentation"](h)
