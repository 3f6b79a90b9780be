"""Moment segmentation: step-boundary precision/recall and the official ``--preprocess_moment_bounds``.

HiREST's ``compute_step_bound_scores`` and ``preprocess_moment_bounds``/``NMS`` (docs/evaluation.md),
re-implemented on plain lists of ``[start, end]`` segments in seconds. Two deliberate deviations, both where the
official code misbehaves, are documented on the functions: a video with no predicted segments scores 0 (the
official code reuses the previous video's count or crashes), and reversed segments are dropped before NMS.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from quag.evaluation.metrics.retrieval import pairwise_iou

MS_THRESHOLDS: tuple[float, ...] = (0.5, 0.7)

Segment = Sequence[float]


def step_bound_scores(
    pred: Sequence[Segment], gt: Sequence[Segment], thresholds: Sequence[float] = MS_THRESHOLDS
) -> dict[float, tuple[float, float]]:
    """Precision and recall of one video's predicted segments against its ground-truth steps.

    For each threshold ``t``, a predicted segment ``P_i`` and a reference ``G_j`` *cover* each other when
    ``IoU(P_i, G_j) > t`` (strict, unlike moment retrieval's ``>=``). Matching is many-to-many:

    * ``precision = |{i : exists j, IoU(P_i, G_j) > t}| / m``
    * ``recall = |{j : exists i, IoU(P_i, G_j) > t}| / n``

    with ``m`` predicted and ``n`` reference segments. Deviation: with ``m = 0`` both are 0 (the official code
    divides by the previous video's ``m`` or raises ``NameError``).

    Args:
        pred: predicted ``[start, end]`` segments in seconds.
        gt: reference ``[start, end]`` segments (at least one).
        thresholds: IoU thresholds.

    Returns:
        ``{t: (precision, recall)}`` on a 0-1 scale.
    """
    if len(gt) == 0:
        raise ValueError("a ground-truth video needs at least one step segment")
    if len(pred) == 0:
        return {t: (0.0, 0.0) for t in thresholds}
    iou = pairwise_iou(pred, gt)  # (m, n)
    out = {}
    for t in thresholds:
        covered = iou > t  # (m, n)
        out[t] = (float(covered.any(axis=1).sum()) / len(pred), float(covered.any(axis=0).sum()) / len(gt))
    return out


def nms_1d(segments: Sequence[Segment], overlap_threshold: float = 0.0) -> list[tuple[float, float]]:
    """The official ``NMS`` applied to segments turned into boxes ``(x1=start, y1=0, x2=end, y2=1)``.

    Areas use inclusive widths, ``area = (end - start + 1) * 2``. The box picked next is always the last of
    the remaining list (the official ``argsort`` of the all-equal ``y2`` keeps input order), and every other
    remaining box with ``overlap = w * 2 / area > overlap_threshold`` is suppressed, where
    ``w = max(0, min(end_i, end_j) - max(start_i, start_j) + 1)``. At the default threshold 0, segments that
    merely touch (or are less than one second apart) suppress each other.

    Returns:
        The kept segments in pick order.
    """
    if len(segments) == 0:
        return []
    boxes = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    x1, x2 = boxes[:, 0], boxes[:, 1]
    y1, y2 = np.zeros(len(boxes)), np.ones(len(boxes))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    # The official code sorts by y2, which is constant: a stable sort keeps input order. numpy's argsort of an
    # all-equal array gives the same order; we write it out so the result never depends on the sort kernel.
    idxs = np.arange(len(boxes))
    pick = []
    while len(idxs) > 0:
        last = len(idxs) - 1
        i = idxs[last]
        pick.append(int(i))
        rest = idxs[:last]
        w = np.maximum(0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        overlap = (w * h) / area[rest]
        idxs = np.delete(idxs, np.concatenate(([last], np.where(overlap > overlap_threshold)[0])))
    return [(float(x1[i]), float(x2[i])) for i in pick]


def preprocess_moment_bounds(pred: Sequence[Segment], gt: Sequence[Segment]) -> list[list[float]]:
    """The official ``--preprocess_moment_bounds`` for one video: clip to the GT span, NMS, refill the gaps.

    With ``min_x`` = first GT step start and ``max_x`` = last GT step end:

    1. keep predicted segments with ``start > min_x`` and ``end < max_x`` (both strict);
    2. :func:`nms_1d` at overlap threshold 0;
    3. sort the survivors by start and refill: ``[min_x, s_1]``, each survivor, the gap ``[e_k, s_{k+1}]``
       between consecutive survivors, and ``[e_last, max_x]``;
    4. if nothing survives, the result is ``[[min_x, max_x]]``.

    The net effect is usually: boundaries = {min_x} + predicted boundaries strictly inside the span + {max_x}.
    Deviation: reversed segments (end < start) are dropped before NMS; the official code lets them through
    with a negative area, which can produce overlapping output segments.

    Args:
        pred: predicted ``[start, end]`` segments in seconds.
        gt: the video's ground-truth step segments.

    Returns:
        The processed segments as ``[start, end]`` lists.
    """
    if len(gt) == 0:
        raise ValueError("a ground-truth video needs at least one step segment")
    min_x, max_x = float(gt[0][0]), float(gt[-1][1])
    inside = [(float(s), float(e)) for s, e in pred if s > min_x and e < max_x and e >= s]
    kept = nms_1d(inside)
    if not kept:
        return [[min_x, max_x]]
    kept.sort(key=lambda seg: seg[0])
    out: list[list[float]] = []
    if kept[0][0] > min_x:
        out.append([min_x, kept[0][0]])
    for k, (s, e) in enumerate(kept):
        out.append([s, e])
        if k + 1 < len(kept):
            out.append([e, kept[k + 1][0]])
    if out[-1][1] < max_x:
        out.append([out[-1][1], max_x])
    return out


def mean_percent(values: Sequence[float]) -> float:
    """``sum(values) / len(values) * 100`` in the official summation order (0 for an empty list)."""
    return sum(values) / len(values) * 100 if values else 0.0
