"""Temporal IoU, moment-retrieval recall and video-retrieval recall, as HiREST's ``evaluate.py`` defines them.

All times are seconds. Nothing here knows about files, categories or missing predictions; callers pass
``None`` for a missing prediction and it scores as a miss.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

IOU_EPS = 1e-8
"""The official denominator offset; it makes an IoU of exactly ``t`` fall just below ``t``."""

MR_THRESHOLDS: tuple[float, ...] = (0.5, 0.7)
VR_KS: tuple[int, ...] = (1, 5, 10, 50)


def temporal_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Continuous IoU of two intervals ``[s1, e1]`` and ``[s2, e2]`` (HiREST ``compute_iou``).

    ``IoU = max(0, min(e1, e2) - max(s1, s2)) / (min(max(e1, e2) - min(s1, s2), (e1 - s1) + (e2 - s2)) + 1e-8)``

    There is no ``+1``: touching intervals and zero-length intervals score 0, and a reversed interval
    (end < start) has no intersection with anything, so it scores 0 as well. Because of the ``1e-8`` offset an
    IoU that is exactly ``t`` on paper (e.g. ``[0, 5]`` vs ``[0, 10]``) is ``t - 5e-10`` here: the official
    protocol counts it as below ``t``, and so do we.

    Args:
        a: ``[start, end]`` in seconds.
        b: ``[start, end]`` in seconds.

    Returns:
        The IoU in ``[0, 1)``.
    """
    s1, e1 = float(a[0]), float(a[1])
    s2, e2 = float(b[0]), float(b[1])
    intersection = min(e1, e2) - max(s1, s2)
    if intersection <= 0:
        return 0.0
    union = min(max(e1, e2) - min(s1, s2), (e1 - s1) + (e2 - s2))
    return intersection / (union + IOU_EPS)


def pairwise_iou(a: np.ndarray | Sequence[Sequence[float]], b: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """:func:`temporal_iou` of every row of ``a`` with every row of ``b`` (same formula, same float results).

    Shapes:
        a: ``(M, 2)``; b: ``(N, 2)``; returns ``(M, N)``.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 2)
    s1, e1 = a[:, :1], a[:, 1:]  # (M, 1)
    s2, e2 = b[None, :, 0], b[None, :, 1]  # (1, N)
    intersection = np.minimum(e1, e2) - np.maximum(s1, s2)  # (M, N)
    union = np.minimum(np.maximum(e1, e2) - np.minimum(s1, s2), (e1 - s1) + (e2 - s2))  # (M, N)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = intersection / (union + IOU_EPS)
    return np.where(intersection > 0, iou, 0.0)


def moment_retrieval_hits(
    gt_spans: Sequence[Sequence[float]],
    pred_spans: Sequence[Sequence[float] | None],
    thresholds: Sequence[float] = MR_THRESHOLDS,
) -> np.ndarray:
    """Per-moment hits of moment retrieval: ``hit[i, k] = IoU(gt_i, pred_i) >= thresholds[k]`` (note ``>=``).

    A missing prediction (``None``) is a miss at every threshold.

    Shapes:
        returns ``(N, len(thresholds))`` bool.
    """
    if len(gt_spans) != len(pred_spans):
        raise ValueError(f"{len(gt_spans)} ground-truth moments but {len(pred_spans)} predictions")
    hits = np.zeros((len(gt_spans), len(thresholds)), dtype=bool)
    for i, (gt, pred) in enumerate(zip(gt_spans, pred_spans, strict=True)):
        if pred is None:
            continue
        iou = temporal_iou(gt, pred)
        hits[i] = [iou >= t for t in thresholds]
    return hits


def recall_at_iou(hits: np.ndarray, thresholds: Sequence[float] = MR_THRESHOLDS) -> dict[str, float]:
    """``R@t = 100 * mean_i hit[i, t]`` under the official keys ``"R@0.5"``, ``"R@0.7"`` (0 when empty)."""
    hits = np.asarray(hits, dtype=bool).reshape(-1, len(thresholds))
    return {f"R@{t}": float(hits[:, k].mean() * 100) if len(hits) else 0.0 for k, t in enumerate(thresholds)}


def rank_videos(videos: Sequence[str], scores: Sequence[float]) -> list[str]:
    """Videos by descending score; ties go to the larger video id first.

    This is the official ``zip(*sorted(zip(scores, videos)))`` followed by a reversal: a tuple sort on
    ``(score, video)`` read backwards.
    """
    if len(videos) != len(scores):
        raise ValueError(f"{len(videos)} videos but {len(scores)} scores")
    return [v for _, v in sorted(zip(scores, videos, strict=True), reverse=True)]


def video_retrieval_hits(
    ranked: Sequence[str] | None, relevant: Iterable[str], ks: Sequence[int] = VR_KS
) -> list[bool]:
    """``hit@k = 1`` if any of the first ``k`` ranked videos is a ground-truth video of the query.

    Args:
        ranked: the prediction's videos after :func:`rank_videos`; ``None`` for a missing prediction (a miss).
        relevant: the query's ground-truth videos (every video listed under it, whatever its ``clip`` flag).
        ks: cut-offs.
    """
    if ranked is None:
        return [False] * len(ks)
    relevant = set(relevant)
    return [any(v in relevant for v in ranked[:k]) for k in ks]


def recall_at_k(hits: np.ndarray | Sequence[Sequence[bool]], ks: Sequence[int] = VR_KS) -> dict[str, float]:
    """``R@k = 100 * (queries with a hit in the top k) / queries`` under the keys ``"R@1"`` ... ``"R@50"``."""
    hits = np.asarray(hits, dtype=bool).reshape(-1, len(ks))
    return {f"R@{k}": float(hits[:, j].mean() * 100) if len(hits) else 0.0 for j, k in enumerate(ks)}
