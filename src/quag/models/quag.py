"""QUAG: Query-centric Audio-Visual Cognition Network (Tu et al., AAAI 2025, https://arxiv.org/abs/2412.13543).

The whole network, top to bottom (paper Figure 2; the authors' layers in docs/models.md), as
:meth:`QuagModel.forward` runs it:

1. input embedding: frames ``Linear(1024 -> H)`` + LayerNorm, transcript (the audio stream R_a)
   ``LayerNorm + Linear(384 -> H)``, query ``Linear(1024 -> H)`` L2-normalised;
2. MSP (Eq. 1-4): InfoNCE between global V and A, bidirectional cross-attention, ``Linear(2H -> H)`` fusion;
3. QC2 (Eq. 5-8): query-conditioned temporal x channel gate on the AV features plus a self-attention branch;
4. time, moment-mask and (segmentation) boundary embeddings, then two post-LN transformer layers;
5. the head of the batch's task: moment retrieval start/end, moment segmentation next boundary, or the
   CLIP4Caption-style caption decoder.

QUAG fuses at the encoder width H (``hidden_dim``). Steps 1-3 do not depend on the moment or boundary masks:
decoding runs them once with :meth:`QuagModel.encode_front`, then step 4 with :meth:`QuagModel.encode_context`
per segmentation round.

Ablations (paper Tables 4, 6, 7) are ``ModelConfig`` switches: ``use_msp=False`` sums V and A; ``use_qc2=False``
gates by the query element-wise (as Joint); ``qc2_gates`` keeps one gate or none; lambda is the loss weight
(``TrainConfig.msp_loss_weight``). Steps 1-3 with their ablations are the QUAG trunk, shared with the TVSum model
(:mod:`quag.models.fusion`).
"""

from __future__ import annotations

import torch
from torch import nn

from quag.config import ModelConfig
from quag.data.collate import Batch
from quag.models.decoder import StepCaptionDecoder
from quag.models.encoders import ContextEmbedding, InputEmbedding
from quag.models.fusion import MSP, QC2, fuse_audio_visual, fuse_query
from quag.models.heads import build_task_heads, task_output
from quag.models.layers import PostLNTransformerLayer
from quag.models.outputs import EncoderOutput, FrontOutput, TaskOutput


class QuagModel(nn.Module):
    """QUAG for moment retrieval, moment segmentation and step captioning.

    Args:
        config: Architecture; ``config.arch`` must be ``"quag"``.

    Shapes:
        Inputs are a :class:`~quag.data.collate.Batch`: video (B, T, Dv), transcript (B, T, Da), query (B, Dq) and
        bool masks (B, T), True = valid. H = ``config.hidden_dim`` is the width of the fusion, the temporal
        encoder and the heads.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.arch != "quag":
            raise ValueError(f"QuagModel needs model.arch='quag', got {config.arch!r} (use build_model)")
        self.config = config
        h, heads, dropout = config.hidden_dim, config.num_heads, config.dropout
        self.mask_padding = config.mask_padding
        self.embed = InputEmbedding(config.visual_dim, config.transcript_dim, config.query_dim, h)
        # Ablated modules are not built at all (None), so they hold no parameters and take no gradient.
        self.msp: MSP | None = None
        if config.use_msp:
            self.msp = MSP(
                h,
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
            self.qc2 = QC2(h, heads, dropout, gates=config.qc2_gates, mask_padding=config.mask_padding)
        self.context = ContextEmbedding(h)
        self.encoder = nn.ModuleList(
            PostLNTransformerLayer(h, heads, config.ffn_dim, dropout, attn_dropout=config.attention_dropout)
            for _ in range(config.num_encoder_layers)
        )
        self.heads = build_task_heads(config, h)

    def forward(self, batch: Batch) -> TaskOutput:
        """Training forward pass for ``batch.task``; logits are finite at padded positions (see outputs)."""
        mask = batch.video_mask  # (B, T)
        # Multi-modal input embedding: frames V, transcript A (the audio stream R_a), query q
        v, a, q = self.embed(batch.video, batch.transcript, batch.query_embedding)  # (B, T, H), (B, T, H), (B, H)
        # MSP (Eq. 1-4): audio-visual fusion and L_msp
        av, msp_loss = fuse_audio_visual(self.msp, v, a, mask)  # (B, T, H)
        # QC2 (Eq. 5-8): the query gates the AV features over time and channels
        x = fuse_query(self.qc2, av, q, mask)  # (B, T, H)
        # Time, moment-mask and boundary embeddings, then the temporal encoder
        x = x + self.context(mask, batch.moment_mask, batch.boundary_mask)  # (B, T, H)
        for layer in self.encoder:
            x = layer(x, mask if self.mask_padding else None)  # (B, T, H)
        # Head of batch.task: start/end (Eq. 9), next boundary (Eq. 10) or caption tokens (Eq. 11)
        return task_output(self.heads, batch, x, msp_loss)

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
        """Input embedding, MSP and QC2: (B, T, Dv), (B, T, Da), (B, Dq), (B, T) -> features (B, T, H).

        ``with_msp_loss=False`` (decoding) skips L_msp, which the features do not depend on: ``msp_loss`` is None.
        """
        v, a, q = self.embed(video, transcript, query_embedding)  # (B, T, H), (B, T, H), (B, H)
        av, msp_loss = fuse_audio_visual(self.msp, v, a, video_mask, with_msp_loss)  # (B, T, H)
        return FrontOutput(features=fuse_query(self.qc2, av, q, video_mask), msp_loss=msp_loss)

    def encode_context(
        self,
        front_features: torch.Tensor,
        video_mask: torch.Tensor,
        moment_mask: torch.Tensor,
        boundary_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Add time / moment-mask / boundary embeddings and run the encoder: (B, T, H) -> (B, T, H)."""
        x = front_features + self.context(video_mask, moment_mask, boundary_mask)  # (B, T, H)
        for layer in self.encoder:
            x = layer(x, video_mask if self.mask_padding else None)  # (B, T, H)
        return x

    def encode(self, batch: Batch) -> EncoderOutput:
        """Front end and context encoder for a batch: hidden (B, T, H) and L_msp (None without MSP)."""
        front = self.encode_front(batch.video, batch.transcript, batch.query_embedding, batch.video_mask)
        hidden = self.encode_context(front.features, batch.video_mask, batch.moment_mask, batch.boundary_mask)
        return EncoderOutput(hidden=hidden, msp_loss=front.msp_loss)

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
