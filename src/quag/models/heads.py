"""The task heads on the encoder output (paper Eq. 9-11; docs/models.md) and the dispatch on the batch's task.

Moment retrieval and moment segmentation return raw per-frame logits, finite everywhere (padded frames
included): the losses and the decoders mask them, so the model never writes -inf into its outputs. The caption
decoder lives in :mod:`quag.models.decoder`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from quag.data.collate import Batch
from quag.models.outputs import CaptionOutput, MomentRetrievalOutput, SegmentationOutput, TaskOutput

if TYPE_CHECKING:
    from quag.config import ModelConfig


class MomentRetrievalHead(nn.Module):
    """Start and end logits over frames: two ``Linear(H -> 1)`` (Eq. 9 before the softmax).

    Args:
        dim: H, encoder width.

    Shapes:
        - h: (B, T, H); output: start (B, T), end (B, T).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.start = nn.Linear(dim, 1)
        self.end = nn.Linear(dim, 1)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.start(h).squeeze(-1), self.end(h).squeeze(-1)  # (B, T), (B, T)


class MomentSegmentationHead(nn.Module):
    """Next-boundary logits over frames: ``Linear(H -> 1)`` (Eq. 10 before the softmax).

    Args:
        dim: H, encoder width.

    Shapes:
        - h: (B, T, H); output: (B, T).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.proj(h).squeeze(-1)  # (B, T)


def build_task_heads(config: ModelConfig, width: int) -> nn.ModuleDict:
    """The three task heads shared by QUAG and Joint on encoder outputs of ``width`` (H): start/end, next
    boundary and the CLIP4Caption-style caption decoder (keys = task names, as the reference's ``heads`` hold
    them)."""
    from quag.models.decoder import StepCaptionDecoder

    return nn.ModuleDict(
        {
            "moment_retrieval": MomentRetrievalHead(width),
            "moment_segmentation": MomentSegmentationHead(width),
            "step_captioning": StepCaptionDecoder(
                config.vocab_size,
                width,
                config.decoder_layers,
                config.num_heads,
                config.ffn_dim,
                config.decoder_max_positions,
                config.dropout,
                mask_memory=config.mask_padding,
                attn_dropout=config.attention_dropout,
            ),
        }
    )


def task_output(heads: nn.ModuleDict, batch: Batch, hidden: torch.Tensor, msp_loss: torch.Tensor | None) -> TaskOutput:
    """Run the head of ``batch.task`` on the encoder output and wrap its logits in the task's output dataclass.

    Moment retrieval: start and end logits (Eq. 9); moment segmentation: next-boundary logits (Eq. 10); step
    captioning: teacher-forced next-token logits of ``batch.caption_ids`` (Eq. 11).

    Args:
        heads: The heads of :func:`build_task_heads`.
        batch: The batch (its task, and for captioning its caption tokens and video mask).
        hidden: Encoder output.
        msp_loss: L_msp to pass through, or None.

    Raises:
        ValueError: A step-captioning batch without ``caption_ids`` (decode with ``generate_beam`` instead).

    Shapes:
        - hidden: (B, T, H); output logits (B, T) per frame, or (B, L, V) per caption token.
    """
    if batch.task == "moment_retrieval":
        start, end = heads["moment_retrieval"](hidden)  # (B, T) each
        return MomentRetrievalOutput(start_logits=start, end_logits=end, msp_loss=msp_loss)
    if batch.task == "moment_segmentation":
        return SegmentationOutput(logits=heads["moment_segmentation"](hidden), msp_loss=msp_loss)  # (B, T)
    if batch.caption_ids is None:
        raise ValueError("a step_captioning forward needs batch.caption_ids; decode with generate_beam instead")
    decoder = heads["step_captioning"]
    logits, _ = decoder(batch.caption_ids, hidden, batch.video_mask, input_mask=batch.caption_mask)  # (B, L, V)
    return CaptionOutput(logits=logits, msp_loss=msp_loss)
