"""Moment retrieval and moment segmentation heads (paper Eq. 9-10; reference-anatomy 2.4-2.5).

Both heads return raw per-frame logits, finite everywhere (padded frames included): the losses and the
decoders mask them, so the model never writes -inf into its outputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

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
    """The three task heads shared by QUAG and Joint on features of ``width``: start/end, next boundary and the
    CLIP4Caption-style caption decoder (keys = task names, as the reference's ``heads`` hold them)."""
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
