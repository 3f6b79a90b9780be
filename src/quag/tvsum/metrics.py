"""TVSum top-5 mAP, exactly as UMT and QD-DETR compute it (pure NumPy, no model import).

Source: TencentARC/UMT ``datasets/tvsum.py`` (``TVSum.evaluate``), copied verbatim into QD-DETR
``qd_detr/inference.py`` (``compute_hl_results``, "Follow the UMT code") and used by TR-DETR and UVCOM, whose
numbers the paper's Table 5 lists. For one video with N clips, predicted saliency ``s`` (N,) and the N x 20
annotator scores ``A`` (1-5):

1. for annotator ``i``: ``y = A[:, i] > median(A[:, i])``, strictly greater, where ``median`` is
   ``torch.median``: for an even N the *lower* of the two middle values (``sorted(A[:, i])[(N - 1) // 2]``), not
   their mean. Clips that tie with the median are negatives;
2. rank the clips by ``s``, highest first, and keep the labels of the top ``k = 5``: ``r_1..r_k`` (all N if
   N < k);
3. ``G = sum(r)``, the positives *among the top k* (not all positives of the video). ``G = 0`` gives AP = 0;
4. otherwise AP is the trapezoidal area under the precision-recall points of the top-k list, starting from
   ``(recall 0, precision 1)``::

       AP = sum_j (R_j - R_{j-1}) * (P_{j-1} + P_j) / 2,   R_j = hits_j / G,  P_j = hits_j / j,  R_0 = 0, P_0 = 1

   e.g. top-5 labels 1,0,0,0,0 give AP 1; 0,1,0,0,0 give 0.25 (P_1 = 0 enters the trapezoid); 1,0,1,0,0 give
   0.5 + 0.5 * (0.5 + 2/3) / 2 = 0.7917;
5. the video's mAP is the mean over the 20 annotators; a category's is the mean over its test videos (one per
   category in the official split), and the reported "Avg." is the mean over the 10 categories.

Ties between predicted scores: UMT calls ``torch.argsort(descending=True)``, whose order among equal scores is
unspecified. We sort stably (equal scores keep clip order, earlier clip first), so the metric is deterministic;
with all-equal predictions the "top 5" are the first five clips.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

TOP_K = 5
"""Clips kept per ranking (the "top-5" of top-5 mAP)."""


def lower_median(values: np.ndarray) -> float:
    """``torch.median`` semantics: the lower of the two middle values for an even count.

    Args:
        values: 1-D array, non-empty.

    Returns:
        ``sorted(values)[(len(values) - 1) // 2]``.
    """
    values = np.asarray(values)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"lower_median needs a non-empty 1-D array, got shape {values.shape}")
    return float(np.sort(values, kind="stable")[(values.size - 1) // 2])


def ranked_order(scores: np.ndarray) -> np.ndarray:
    """Clip indices by descending score; equal scores keep their clip order (stable)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def top_k_average_precision(ranked_labels: Sequence[float] | np.ndarray, k: int = TOP_K) -> float:
    """UMT's AP over the first ``k`` entries of a ranked 0/1 label list (module docstring, step 3-4).

    Args:
        ranked_labels: 0/1 labels in predicted order, best first.
        k: List length kept.

    Returns:
        AP in [0, 1]; 0 when the top ``k`` hold no positive.
    """
    top = [float(x) for x in list(ranked_labels)[:k]]
    num_gt = sum(top)
    if num_gt == 0:
        return 0.0
    hits = ap = recall = 0.0
    precision = 1.0
    for j, gt in enumerate(top):
        hits += gt
        new_recall, new_precision = hits / num_gt, hits / (j + 1)
        ap += (new_recall - recall) * (precision + new_precision) / 2
        recall, precision = new_recall, new_precision
    return ap


def annotator_labels(annotations: np.ndarray) -> np.ndarray:
    """Per-annotator binary labels: clip score strictly above that annotator's lower median.

    Args:
        annotations: (N, A) importance scores, one column per annotator.

    Returns:
        (N, A) float array of 0/1.
    """
    annotations = np.asarray(annotations, dtype=np.float64)
    if annotations.ndim != 2 or annotations.shape[0] == 0:
        raise ValueError(f"annotations must be (N clips, A annotators) with N > 0, got shape {annotations.shape}")
    thresholds = np.array([lower_median(annotations[:, i]) for i in range(annotations.shape[1])])  # (A,)
    return (annotations > thresholds[None, :]).astype(np.float64)


def video_top5_ap(scores: np.ndarray, annotations: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """Top-k AP of one video for every annotator.

    Args:
        scores: (N,) predicted saliency, one per clip.
        annotations: (N, A) annotator scores.
        k: Clips kept per ranking.

    Returns:
        (A,) AP per annotator.
    """
    scores = np.asarray(scores, dtype=np.float64)
    annotations = np.asarray(annotations, dtype=np.float64)
    if scores.ndim != 1 or scores.shape[0] != annotations.shape[0]:
        raise ValueError(
            f"scores {scores.shape} must have one value per annotated clip ({annotations.shape[0]} clips); "
            "predict one score per 2-s clip of the truncated video"
        )
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or inf")
    ranked = annotator_labels(annotations)[ranked_order(scores)]  # (N, A) labels in predicted order
    return np.array([top_k_average_precision(ranked[:, i], k) for i in range(ranked.shape[1])])


def video_top5_map(scores: np.ndarray, annotations: np.ndarray, k: int = TOP_K) -> float:
    """Top-k mAP of one video: the mean of :func:`video_top5_ap` over annotators."""
    return float(video_top5_ap(scores, annotations, k).mean())


def top5_map(
    predictions: Mapping[str, Sequence[float] | np.ndarray],
    annotations: Mapping[str, np.ndarray],
    video_ids: Sequence[str] | None = None,
    k: int = TOP_K,
) -> float:
    """Top-k mAP over several videos: per annotator the mean AP over videos, then the mean over annotators.

    With the same number of annotators for every video (TVSum: 20) this equals the mean of the per-video mAPs,
    which is also QD-DETR's ``np.mean`` over the (video, annotator) grid.

    Args:
        predictions: video id -> (N,) saliency scores.
        annotations: video id -> (N, A) annotator scores.
        video_ids: Videos to score (default: every video in ``predictions``).
        k: Clips kept per ranking.

    Returns:
        mAP in [0, 1].
    """
    ids = list(predictions) if video_ids is None else list(video_ids)
    if not ids:
        raise ValueError("top5_map needs at least one video")
    missing = [v for v in ids if v not in predictions or v not in annotations]
    if missing:
        raise ValueError(f"no prediction or annotation for {missing[:5]}")
    per_video = np.stack([video_top5_ap(np.asarray(predictions[v]), annotations[v], k) for v in ids])  # (V, A)
    return float(per_video.mean(0).mean())
