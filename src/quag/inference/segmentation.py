"""Moment-segmentation decoding: the reference's iterative boundary algorithm, vectorised over the batch.

Per video, with the moment frames ``[ms, me]`` (``docs/inference.md``):

1. the region mask is ``[ms, me]``, the boundary mask has ``ms``;
2. each round: logits outside the region get the lowest float, softmax over time, peak ``p*`` at ``k*``; walk left
   from ``k*`` while ``p[l] / p* > threshold`` and ``l > 0``, right while ``p[r] / p* > threshold`` and
   ``r < T - 1`` (each walk stops on, and includes, the first frame at or below the threshold); skip the video if
   ``p* < 1e-5``, ``l == 0`` or ``r == 0``; otherwise remove ``[l, r]`` from the region, mark ``l`` and ``r`` as
   boundaries and record ``[l, r]``;
3. post-processing (:func:`postprocess_boundaries`) turns the recorded islands into boundary frames.

A skipped video's inputs do not change, so (in eval mode) it would be skipped in every later round: it is retired
at once, and the loop stops when every video is retired. Each round calls ``logits_fn`` on the active videos
only; for QUAG that is the encoder and head on cached MSP/QC2 features (the front end does not depend on the
masks). The right walk stops at each video's own last frame; ``length="reference"`` stops it at the padded
length of the batch instead, as the authors' code does (the result then depends on which videos share a batch:
a shorter video whose moment ends on its last frame walks one frame into the padding, and the reference
post-processing then keeps its moment end, which it drops under the own bound). Every difference from the
authors' code and its switch: ``docs/reference.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch

LogitsFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""(rows (b,) int64, region_mask (b, T) bool, boundary_mask (b, T) bool) -> logits (b, T)."""

MIN_PEAK = 1e-5


def decode_islands(
    logits_fn: LogitsFn,
    moment_frames: torch.Tensor,
    lengths: torch.Tensor,
    rounds: int = 20,
    threshold: float = 0.5,
    early_stop: bool = True,
    length: Literal["own", "reference"] = "own",
) -> list[list[tuple[int, int]]]:
    """Run the iterative decoding; returns the recorded ``[lo, hi]`` islands of every video, in round order.

    Args:
        logits_fn: scores the active rows given their current masks (see :data:`LogitsFn`).
        moment_frames: (B, 2) inclusive ``[ms, me]`` per video.
        lengths: (B,) number of real frames per video.
        rounds: maximum rounds (the reference runs 20).
        threshold: relative region-expansion threshold.
        early_stop: retire skipped videos (same result); False scores every video in every round, as the
            reference does (used by the benchmark for a like-for-like cost).
        length: where the right walk stops: ``own`` last frame or the padded length (``reference``).
    """
    device = moment_frames.device
    B = moment_frames.shape[0]
    T = int(lengths.max())
    idx = torch.arange(T, device=device)  # (T,)
    region = (idx[None] >= moment_frames[:, :1]) & (idx[None] <= moment_frames[:, 1:])  # (B, T)
    boundary = idx[None] == moment_frames[:, :1]  # (B, T)
    active = torch.ones(B, dtype=torch.bool, device=device)
    records: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (rows, lo, hi) per round
    last = (lengths - 1).to(device) if length == "own" else torch.full((B,), T - 1, device=device)  # (B,)
    neg = torch.finfo(torch.float32).min
    for _ in range(rounds):
        rows = active.nonzero()[:, 0]  # (b,)
        if rows.numel() == 0:
            break
        reg = region[rows]  # (b, T)
        logits = logits_fn(rows, reg, boundary[rows]).float()  # (b, T)
        p = logits.masked_fill(~reg, neg).softmax(dim=-1)  # (b, T)
        peak, k = p.max(dim=-1)  # (b,)
        above = p / peak[:, None] > threshold  # (b, T)
        left_stop = (~above) & (idx[None] < k[:, None])
        lo = torch.where(left_stop, idx[None], -1).max(dim=-1).values.clamp(min=0)  # (b,)
        lr = last[rows]
        right_stop = ((~above) | (idx[None] == lr[:, None])) & (idx[None] >= k[:, None])
        hi = torch.where(right_stop, idx[None], T).min(dim=-1).values.clamp(max=T - 1)  # (b,)
        ok = (peak >= MIN_PEAK) & (lo > 0) & (hi > 0)
        keep = rows[ok]
        if early_stop:
            active[rows[~ok]] = False  # unchanged inputs -> skipped again in every later round
        if keep.numel():
            lk, rk = lo[ok], hi[ok]
            span = (idx[None] >= lk[:, None]) & (idx[None] <= rk[:, None])  # (k, T)
            region[keep] &= ~span
            boundary[keep, lk] = True
            boundary[keep, rk] = True
            records.append((keep, lk, rk))
    out: list[list[tuple[int, int]]] = [[] for _ in range(B)]
    for rows_t, l_t, r_t in records:  # one host transfer per round, after the loop
        for b, lo, hi in zip(rows_t.tolist(), l_t.tolist(), r_t.tolist(), strict=True):
            out[b].append((lo, hi))
    return out


def decode_sequential(
    logits_fn: LogitsFn,
    moment_frames: torch.Tensor,
    lengths: torch.Tensor,
    max_steps: int = 64,
    min_gap: int = 1,
) -> list[list[int]]:
    """Next-boundary decoding exactly as the head is trained (teacher forcing, ``docs/inference.md``).

    From ``b_0 = ms``: the region mask covers ``[b_i, me]`` and the boundary mask ``b_0..b_i`` (the training
    inputs), and ``b_{i+1}`` is the best-scoring frame in ``(b_i, me]``; a video stops when it predicts ``me`` (the
    last training target of every video) or after ``max_steps`` boundaries, which then end at ``me``. A boundary
    lies at least ``min_gap`` frames after the previous one, except ``me``, which is always a candidate. This removes
    the reference's train/test mismatch (contiguous suffix masks in training, islands at inference) and its fixed
    20-round budget. Vectorised over the batch; each step scores only the videos still running.

    Returns:
        Boundary frames per video, ``[ms, ..., me]`` (one segment ``[ms, me]`` at least).
    """
    device = moment_frames.device
    T = int(lengths.max())
    idx = torch.arange(T, device=device)  # (T,)
    ms, me = moment_frames[:, 0], moment_frames[:, 1]  # (B,)
    current = ms.clone()  # (B,) latest boundary
    boundary = idx[None] == ms[:, None]  # (B, T)
    active = me > ms
    out: list[list[int]] = [[int(a)] for a in ms.tolist()]
    neg = torch.finfo(torch.float32).min
    for _ in range(max_steps):
        rows = active.nonzero()[:, 0]  # (b,)
        if rows.numel() == 0:
            break
        cur, end = current[rows], me[rows]
        region = (idx[None] >= cur[:, None]) & (idx[None] <= end[:, None])  # (b, T) = [b_i, me]
        logits = logits_fn(rows, region, boundary[rows]).float()  # (b, T)
        # (b, T) = [b_i + min_gap, me], and me itself whatever the gap
        allowed = region & ((idx[None] >= cur[:, None] + min_gap) | (idx[None] == end[:, None]))
        nxt = logits.masked_fill(~allowed, neg).argmax(dim=-1)  # (b,)
        current[rows] = nxt
        boundary[rows, nxt] = True
        active[rows] = nxt < end
        for b, x in zip(rows.tolist(), nxt.tolist(), strict=True):
            out[b].append(x)
    for b, z in enumerate(me.tolist()):
        if out[b][-1] != z or len(out[b]) == 1:  # budget exhausted, or a zero-length moment
            out[b].append(z)
    return out


def decode_sequential_naive(
    logits_fn: LogitsFn, moment_frames: torch.Tensor, lengths: torch.Tensor, max_steps: int = 64, min_gap: int = 1
) -> list[list[int]]:
    """Per-video loop of :func:`decode_sequential` (for tests and the benchmark)."""
    out = []
    Tpad = int(lengths.max())
    for b in range(moment_frames.shape[0]):
        ms, me = int(moment_frames[b, 0]), int(moment_frames[b, 1])
        bounds = [ms]
        boundary = torch.zeros(1, Tpad, dtype=torch.bool, device=moment_frames.device)
        boundary[0, ms] = True
        while bounds[-1] < me and len(bounds) <= max_steps:
            region = torch.zeros(1, Tpad, dtype=torch.bool, device=moment_frames.device)
            region[0, bounds[-1] : me + 1] = True
            logits = logits_fn(torch.tensor([b], device=moment_frames.device), region, boundary.clone())[0].tolist()
            candidates = [t for t in range(bounds[-1] + 1, me + 1) if t >= bounds[-1] + min_gap or t == me]
            nxt = max(candidates, key=lambda t: (logits[t], -t))
            bounds.append(nxt)
            boundary[0, nxt] = True
        if bounds[-1] != me or len(bounds) == 1:
            bounds.append(me)
        out.append(bounds)
    return out


def postprocess_boundaries(
    islands: list[tuple[int, int]],
    ms: int,
    me: int,
    min_gap: int = 5,
    emit_last: bool = True,
) -> list[int]:
    """Islands -> increasing boundary frames.

    Reference (``emit_last=False``): segments = ``[[ms, ms]] + islands + [[me, me]]`` sorted by left edge; flatten;
    pop trailing values ``> me``; de-duplicate and sort; keep the first value and then each value at least
    ``min_gap`` frames after the last kept one, never considering the largest value. The result starts at the
    smallest edge (an island can reach one frame before ``ms``) and normally lacks ``me``: the reference leaves the
    last segment to the evaluator's ground-truth refill.

    Corrected (``emit_last=True``, default): every edge is clipped into ``[ms, me]``, all values are considered, and
    ``me`` closes the list (appended, or replacing the last kept boundary when that one lies less than ``min_gap``
    frames before ``me``, but never ``ms``), so the segments tile the moment exactly.
    """
    segments = sorted([(ms, ms), *islands, (me, me)], key=lambda s: s[0])
    edges = [x for s in segments for x in s]
    if emit_last:
        values = sorted({min(max(x, ms), me) for x in edges})
        kept = values[:1]
        for v in values[1:]:
            if v - kept[-1] >= min_gap:
                kept.append(v)
        if kept[-1] != me or len(kept) == 1:  # len 1: a zero-length moment still yields one segment
            if me - kept[-1] < min_gap and len(kept) > 1:
                kept[-1] = me
            else:
                kept.append(me)
        return kept
    while edges and edges[-1] > me:
        edges.pop()
    values = sorted(set(edges))
    kept = values[:1]
    for v in values[1:-1]:
        if v - kept[-1] >= min_gap:
            kept.append(v)
    return kept


def boundaries_to_segments(boundaries: list[int]) -> list[tuple[int, int]]:
    """Consecutive pairs: [b0, b1, b2] -> [(b0, b1), (b1, b2)]."""
    return list(zip(boundaries[:-1], boundaries[1:], strict=True))


def decode_islands_naive(
    logits_fn: LogitsFn,
    moment_frames: torch.Tensor,
    lengths: torch.Tensor,
    rounds: int = 20,
    threshold: float = 0.5,
    length: Literal["own", "reference"] = "own",
) -> list[list[tuple[int, int]]]:
    """Straightforward per-video, per-round implementation of the reference loop (no early stop); for tests
    and the benchmark's naive baseline."""
    out = []
    neg = torch.finfo(torch.float32).min
    for b in range(moment_frames.shape[0]):
        Tpad = int(lengths.max())
        T, ms, me = int(lengths[b]) if length == "own" else Tpad, int(moment_frames[b, 0]), int(moment_frames[b, 1])
        region = torch.zeros(1, Tpad, dtype=torch.bool, device=moment_frames.device)
        region[0, ms : me + 1] = True
        boundary = torch.zeros(1, Tpad, dtype=torch.bool, device=moment_frames.device)
        boundary[0, ms] = True
        islands = []
        for _ in range(rounds):
            row = torch.tensor([b], device=moment_frames.device)
            logits = logits_fn(row, region.clone(), boundary.clone())[0].float()
            p = logits.masked_fill(~region[0], neg).softmax(dim=-1).tolist()
            peak = max(p)
            k = p.index(peak)
            if peak < MIN_PEAK:
                continue
            lo = k
            while lo > 0 and p[lo] / peak > threshold:
                lo -= 1
            hi = k
            while hi < T - 1 and p[hi] / peak > threshold:
                hi += 1
            if lo == 0 or hi == 0:
                continue
            region[0, lo : hi + 1] = False
            boundary[0, lo] = True
            boundary[0, hi] = True
            islands.append((lo, hi))
        out.append(islands)
    return out
