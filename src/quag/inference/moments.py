"""Moment-retrieval decoding: start/end logits (B, T) -> one span of frames per video.

The reference trains the heads with per-frame binary cross-entropy (docs/inference.md), so a frame's start
score is ``log sigmoid(start_logit)``; heads trained with a softmax over frames (the paper's Eq. 12,
``train.moment_loss=ce``) are scored with ``log softmax``. ``span`` decoding returns the pair maximising
``score(s_i) + score(e_j)`` under ``i <= j`` (and ``j - i < max_len`` when given); ``reference`` takes the two
argmaxes separately, as the reference does (its spans can be reversed and then score IoU 0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def decode_spans(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    mask: torch.Tensor,
    mode: str = "span",
    max_len: int = 0,
    score: str = "sigmoid",
) -> torch.Tensor:
    """Best (start, end) frame pair per row.

    Args:
        start_logits, end_logits: (B, T) logits.
        mask: (B, T) bool, True on real frames (every row needs at least one).
        mode: ``span`` or ``reference`` (two independent argmaxes, as the authors' code).
        max_len: longest span in frames for ``span`` (0 = unlimited).
        score: ``sigmoid`` (per-frame BCE heads) or ``softmax`` (heads trained with a softmax over frames).

    Returns:
        (B, 2) int64 frame indices.

    ``span`` without a length limit is O(T) per row: a running maximum of the start scores (``cummax``) paired with
    every end. With a limit, the valid (i, j) band is scored at once, O(T * max_len) memory.
    """
    if not mask.any(dim=1).all():
        raise ValueError("every video needs at least one valid frame")
    neg = torch.finfo(torch.float32).min
    if score not in ("sigmoid", "softmax"):
        raise ValueError(f"unknown frame score {score!r}; expected sigmoid or softmax")
    if score == "sigmoid":
        s = F.logsigmoid(start_logits.float()).masked_fill(~mask, neg)  # (B, T)
        e = F.logsigmoid(end_logits.float()).masked_fill(~mask, neg)
    else:
        s = start_logits.float().masked_fill(~mask, neg).log_softmax(dim=1).masked_fill(~mask, neg)  # (B, T)
        e = end_logits.float().masked_fill(~mask, neg).log_softmax(dim=1).masked_fill(~mask, neg)
    if mode == "reference":
        return torch.stack([s.argmax(dim=1), e.argmax(dim=1)], dim=1)
    if mode != "span":
        raise ValueError(f"unknown moment decoding {mode!r}; expected span or reference")
    B, T = s.shape
    if max_len <= 0 or max_len >= T:
        best_start, best_idx = torch.cummax(s, dim=1)  # (B, T): best start at or before each end frame
        total = best_start + e
        end = total.argmax(dim=1)  # (B,)
        start = best_idx.gather(1, end[:, None])[:, 0]
        return torch.stack([start, end], dim=1)
    # band of allowed (start, end) pairs: 0 <= end - start < max_len
    offsets = torch.arange(max_len, device=s.device)  # (L,)
    starts = torch.arange(T, device=s.device)[:, None]  # (T, 1)
    ends = starts + offsets  # (T, L)
    inside = ends < T
    ends_c = ends.clamp(max=T - 1)
    pair = s[:, :, None] + e[:, ends_c]  # (B, T, L)
    pair = pair.masked_fill(~inside[None], float("-inf"))
    flat = pair.reshape(B, -1).argmax(dim=1)  # (B,)
    start = flat // max_len
    end = start + flat % max_len
    return torch.stack([start, end], dim=1)
