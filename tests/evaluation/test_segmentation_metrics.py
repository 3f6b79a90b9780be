"""Step-boundary precision/recall, the official 1-D NMS and ``preprocess_moment_bounds``: hand-worked cases."""

from __future__ import annotations

import pytest

from quag.evaluation.metrics.segmentation import (
    mean_percent,
    nms_1d,
    preprocess_moment_bounds,
    step_bound_scores,
)

GT = [[0, 10], [10, 30], [30, 40]]


def test_worked_segmentation_case() -> None:
    # GT steps G1 [0,10], G2 [10,30], G3 [30,40]; predictions:
    #   P1 [0, 8]:   IoU with G1 = 8/10 = 0.8            -> covers G1 at 0.5 and 0.7
    #   P2 [8, 25]:  with G2 = 15 / (30 - 8) = 0.68      -> covers G2 at 0.5 only;
    #                with G1 = 2 / min(25 - 0, 17 + 10) = 0.08
    #   P3 [25, 40]: with G3 = 10/15 = 0.667             -> covers G3 at 0.5 only; with G2 = 5/30 = 0.167
    #   P4 [40, 45]: touches G3 only                     -> covers nothing
    # t = 0.5: covered preds {P1, P2, P3} -> precision 3/4; covered refs {G1, G2, G3} -> recall 3/3
    # t = 0.7: covered preds {P1} -> 1/4; covered refs {G1} -> 1/3
    pred = [[0, 8], [8, 25], [25, 40], [40, 45]]
    scores = step_bound_scores(pred, GT)
    assert scores[0.5] == (0.75, 1.0)
    assert scores[0.7] == (0.25, pytest.approx(1 / 3))


def test_matching_is_many_to_many_and_strict() -> None:
    # one prediction covering the whole span covers no step strictly above 0.5 ([0,10]: 10/40, [10,30]: 20/40)
    assert step_bound_scores([[0, 40]], GT)[0.5] == (0.0, 0.0)
    # two predictions both cover G2 (IoU 0.9 and 0.9): both count for precision, G2 once for recall
    scores = step_bound_scores([[10, 28], [12, 30]], GT)
    assert scores[0.5] == (1.0, pytest.approx(1 / 3))
    # IoU exactly 0.5 on paper is not > 0.5: [0, 5] vs [0, 10]
    assert step_bound_scores([[0, 5]], [[0, 10]])[0.5] == (0.0, 0.0)


def test_empty_prediction_scores_zero_instead_of_reusing_the_previous_video() -> None:
    assert step_bound_scores([], GT) == {0.5: (0.0, 0.0), 0.7: (0.0, 0.0)}
    with pytest.raises(ValueError, match="at least one step"):
        step_bound_scores([[0, 1]], [])


def test_nms_suppresses_touching_neighbours_from_the_last_one() -> None:
    # picks the last segment first; [20,30] touches it (w = 30 - 30 + 1 = 1 > 0) and is suppressed; [10,20] is
    # kept, which suppresses [0,10]. Segments 1 s apart ([0,10] vs [11,20]: w = 10 - 11 + 1 = 0) survive.
    assert nms_1d([[0, 10], [10, 20], [20, 30], [30, 40]]) == [(30.0, 40.0), (10.0, 20.0)]
    assert nms_1d([[0, 10], [11, 20]]) == [(11.0, 20.0), (0.0, 10.0)]
    assert nms_1d([[0, 10], [10.5, 20]]) == [(10.5, 20.0)]  # less than a second apart: overlapping (+1 widths)
    assert nms_1d([]) == []


def test_preprocess_keeps_interior_boundaries_and_refills() -> None:
    # GT span [0, 40]. [0, 10] starts at min_x and [30, 40] ends at max_x: both fail the strict filter.
    # NMS picks the later of the interior pair, [20, 30], and suppresses the touching [10, 20]; the refill gives
    # [0, 20], [20, 30], [30, 40]: boundary 10 is lost, boundary 30 survives as the survivor's end.
    pred = [[0, 10], [10, 20], [20, 30], [30, 40]]
    assert preprocess_moment_bounds(pred, GT) == [[0.0, 20.0], [20.0, 30.0], [30.0, 40.0]]
    # A model that never emits the last segment (as the official decoder) gets it back from the GT span:
    assert preprocess_moment_bounds([[0, 15], [15, 25]], GT) == [[0.0, 15.0], [15.0, 25.0], [25.0, 40.0]]
    # Consecutive segments strictly inside: the first one is suppressed by its touching neighbour, so its start
    # boundary (5) is lost; the end boundaries come back through the refill.
    assert preprocess_moment_bounds([[5, 15], [15, 25]], GT) == [[0.0, 15.0], [15.0, 25.0], [25.0, 40.0]]


def test_preprocess_drops_segments_outside_the_gt_span() -> None:
    # both adjacent predicted segments stick out of the span: the interior boundary 20 is lost (official)
    assert preprocess_moment_bounds([[-5, 20], [20, 45]], GT) == [[0.0, 40.0]]
    # nothing predicted -> the whole GT span
    assert preprocess_moment_bounds([], GT) == [[0.0, 40.0]]
    # reversed segments are dropped before NMS (deviation: the official code lets them through)
    assert preprocess_moment_bounds([[25, 15]], GT) == [[0.0, 40.0]]
    # a zero-length segment strictly inside becomes a boundary pair
    assert preprocess_moment_bounds([[20, 20]], GT) == [[0.0, 20.0], [20.0, 20.0], [20.0, 40.0]]


def test_mean_percent_is_the_official_sum_order() -> None:
    values = [0.1, 0.2, 0.3]
    assert mean_percent(values) == sum(values) / 3 * 100
    assert mean_percent([]) == 0.0
