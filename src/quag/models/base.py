"""What QUAG and Joint share: the task heads and the forward pass built on a two-part encoder.

A model implements :meth:`VideoTaskModel.encode_front` (what does not depend on the moment or boundary masks,
run once per video when decoding segments) and :meth:`VideoTaskModel.encode_context` (context embeddings and the
encoder); the heads (``self.heads``, from :func:`quag.models.heads.build_task_heads`), :meth:`encode` and the
training forward are common.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from quag.data.collate import Batch
from quag.models.decoder import StepCaptionDecoder
from quag.models.outputs import (
    CaptionOutput,
    EncoderOutput,
    FrontOutput,
    MomentRetrievalOutput,
    SegmentationOutput,
    TaskOutput,
)


class VideoTaskModel(nn.Module, ABC):
    """Base of :class:`~quag.models.quag.QuagModel` and :class:`~quag.models.joint.JointModel`."""

    heads: nn.ModuleDict

    @abstractmethod
    def encode_front(
        self, video: torch.Tensor, asr: torch.Tensor, query: torch.Tensor, video_mask: torch.Tensor
    ) -> FrontOutput:
        """(B, T, Dv), (B, T, Da), (B, Dq), (B, T) -> mask-independent features and L_msp (or None)."""

    @abstractmethod
    def encode_context(
        self,
        front_features: torch.Tensor,
        video_mask: torch.Tensor,
        moment_mask: torch.Tensor,
        boundary_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Context embeddings and the encoder: front features -> hidden (B, T, H)."""

    @property
    def decoder(self) -> StepCaptionDecoder:
        """The step-caption decoder (``heads["step_captioning"]``)."""
        return self.heads["step_captioning"]  # type: ignore[return-value]

    def encode(self, batch: Batch) -> EncoderOutput:
        """Front end and context encoder for a batch: hidden (B, T, H) and L_msp (None for Joint)."""
        front = self.encode_front(batch.video, batch.asr, batch.query, batch.video_mask)
        hidden = self.encode_context(front.features, batch.video_mask, batch.moment_mask, batch.boundary_mask)
        return EncoderOutput(hidden=hidden, msp_loss=front.msp_loss)

    def moment_logits(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Start and end logits (B, T) each from the encoder output (B, T, H)."""
        return self.heads["moment_retrieval"](h)

    def segment_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Next-boundary logits (B, T) from the encoder output (B, T, H)."""
        return self.heads["moment_segmentation"](h)

    def forward(self, batch: Batch) -> TaskOutput:
        """Training forward pass for ``batch.task``; logits are finite at padded positions (see outputs)."""
        enc = self.encode(batch)
        h, msp_loss = enc.hidden, enc.msp_loss
        if batch.task == "moment_retrieval":
            start, end = self.moment_logits(h)
            return MomentRetrievalOutput(start_logits=start, end_logits=end, msp_loss=msp_loss)
        if batch.task == "moment_segmentation":
            return SegmentationOutput(logits=self.segment_logits(h), msp_loss=msp_loss)
        if batch.caption_ids is None:
            raise ValueError("a step_captioning forward needs batch.caption_ids; decode with generate_beam instead")
        logits, _ = self.decoder(batch.caption_ids, h, batch.video_mask, input_mask=batch.caption_mask)
        return CaptionOutput(logits=logits, msp_loss=msp_loss)
