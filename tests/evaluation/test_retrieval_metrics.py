"""IoU, moment-retrieval recall and video-retrieval recall: hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from quag.evaluation.metrics.retrieval import (
    IOU_EPS,
    moment_retrieval_hits,
    pairwise_iou,
    rank_videos,
    recall_at_iou,
    recall_at_k,
    temporal_iou,
    video_retrieval_hits,
)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([0, 10], [5, 15], 5 / (15 + IOU_EPS)),  # overlap 5, union 15 -> 1/3
        ([0, 5], [5, 10], 0.0),  # touching: no +1, so no intersection
        ([0, 10], [2, 4], 2 / (10 + IOU_EPS)),  # nested: 2 / 10
        ([2, 4], [0, 10], 2 / (10 + IOU_EPS)),  # symmetric
        ([0, 10], [8, 2], 0.0),  # reversed prediction: min(10, 2) - max(0, 8) < 0
        ([10, 0], [0, 10], 0.0),  # reversed, covering the same seconds
        ([3, 3], [0, 10], 0.0),  # zero length inside
        ([3, 3], [3, 3], 0.0),  # zero length with itself
        ([0, 10], [0, 10], 10 / (10 + IOU_EPS)),  # identical: just below 1
        ([0, 1], [2, 3], 0.0),  # disjoint
        ([0.5, 2.5], [1, 3], 1.5 / (2.5 + IOU_EPS)),  # fractional GT seconds
    ],
)
def test_iou_cases(a: list[float], b: list[float], expected: float) -> None:
    assert temporal_iou(a, b) == expected


def test_iou_at_exact_threshold_is_below_it() -> None:
    # [0, 5] vs [0, 10] is 1/2 on paper; the official 1e-8 offset makes it 0.4999999995, i.e. a miss at 0.5.
    assert temporal_iou([0, 5], [0, 10]) < 0.5
    assert temporal_iou([0, 5], [0, 10]) == pytest.approx(0.5)


def test_pairwise_matches_scalar() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 30, size=(40, 2)).astype(float)  # includes reversed, zero-length and touching pairs
    b = rng.integers(0, 30, size=(25, 2)).astype(float)
    fast = pairwise_iou(a, b)
    naive = np.array([[temporal_iou(x, y) for y in b] for x in a])
    assert np.array_equal(fast, naive)


def test_moment_retrieval_hits_use_greater_equal_and_count_missing() -> None:
    gt = [[0, 10], [0, 10], [0, 100], [0, 10]]
    pred = [
        [0, 10],  # IoU 1 - 1e-9: hit at 0.5 and 0.7
        [0, 6],  # 0.6: hit at 0.5 only
        [0, 70],  # 0.7 - eps: hit at 0.5 only (the official offset)
        None,  # missing: miss
    ]
    hits = moment_retrieval_hits(gt, pred)
    assert hits.tolist() == [[True, True], [True, False], [True, False], [False, False]]
    assert recall_at_iou(hits) == {"R@0.5": 75.0, "R@0.7": 25.0}


def test_rank_ties_go_to_the_larger_video_id() -> None:
    # official: zip(*sorted(zip(scores, videos))) then reversed
    videos = ["a.mp4", "c.mp4", "b.mp4", "d.mp4"]
    scores = [0.5, 0.5, 0.9, 0.5]
    assert rank_videos(videos, scores) == ["b.mp4", "d.mp4", "c.mp4", "a.mp4"]
    official = list(zip(*sorted(zip(scores, videos, strict=True)), strict=True))[1][::-1]
    assert rank_videos(videos, scores) == list(official)


def test_video_retrieval_recall_with_a_tie_deciding_r1() -> None:
    # query 1: the relevant a.mp4 ties with z.mp4 at the top; z wins the tie, so R@1 misses and R@5 hits
    q1 = rank_videos(["a.mp4", "z.mp4", "m.mp4"], [0.7, 0.7, 0.1])
    # query 2: relevant video ranked 6th: misses R@1 and R@5, hits R@10
    q2 = rank_videos([f"{i}.mp4" for i in range(10)], [1.0 - i / 10 for i in range(10)])
    hits = [
        video_retrieval_hits(q1, {"a.mp4"}),
        video_retrieval_hits(q2, {"5.mp4"}),
        video_retrieval_hits(None, {"x.mp4"}),  # missing prediction
    ]
    assert hits == [[False, True, True, True], [False, False, True, True], [False, False, False, False]]
    assert recall_at_k(hits) == pytest.approx({"R@1": 0.0, "R@5": 100 / 3, "R@10": 200 / 3, "R@50": 200 / 3})
