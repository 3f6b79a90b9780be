"""Moment retrieval and moment segmentation heads (paper Eq. 9-10; reference-anatomy 2.4-2.5).

Both heads return raw per-frame logits, finite everywhere (padded frames included): the losses and the
decoders mask them, so the model never writes -inf into its outputs.
"""

from __future__ import annotations

import torch
from torch import nn


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
