"""Top-5 mAP (UMT / QD-DETR protocol): hand-computed cases and a transcription of UMT's loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from quag.tvsum.metrics import (
    annotator_labels,
    lower_median,
    top5_map,
    top_k_average_precision,
    video_top5_ap,
    video_top5_map,
)


@pytest.mark.parametrize(
    ("ranked", "expected"),
    [
        ([1, 0, 0, 0, 0], 1.0),
        ([1, 1, 1, 1, 1], 1.0),
        ([0, 1, 0, 0, 0], 0.25),  # P_1 = 0 enters the first trapezoid: (1 - 0) * (0 + 1/2) / 2
        ([1, 0, 1, 0, 0], 0.5 + 0.5 * (0.5 + 2 / 3) / 2),
        ([0, 0, 0, 0, 1], 1.0 * (0 + 0.2) / 2),
        ([0, 0, 0, 0, 0, 1], 0.0),  # the positive at rank 6 is outside the top 5
        ([0, 0, 0], 0.0),
        ([0, 1], 0.25),  # fewer clips than k: the whole list
    ],
)
def test_top_k_average_precision_hand_cases(ranked: list[int], expected: float) -> None:
    assert top_k_average_precision(ranked) == pytest.approx(expected, abs=1e-12)


def test_recall_is_relative_to_positives_in_the_top_k() -> None:
    # Two positives in the top 5 and many more below: G = 2, not the video's positive count.
    assert top_k_average_precision([1, 1, 0, 0, 0, 1, 1, 1, 1]) == pytest.approx(1.0)


def test_lower_median_is_torch_median() -> None:
    assert lower_median(np.array([1.0, 2.0, 3.0, 4.0])) == 2.0  # not 2.5
    assert lower_median(np.array([3.0, 1.0, 2.0])) == 2.0
    for n in (1, 2, 5, 8, 20):
        x = np.random.default_rng(n).integers(1, 6, size=n).astype(float)
        assert lower_median(x) == float(torch.median(torch.from_numpy(x)))


def test_ties_at_the_median_are_negatives() -> None:
    anno = np.array([[1, 1], [2, 1], [2, 2], [2, 2], [3, 5]], dtype=float)
    # Column 0: median 2, only the 3 is above. Column 1 (N = 5, sorted 1 1 2 2 5): median 2, only the 5.
    np.testing.assert_array_equal(annotator_labels(anno), [[0, 0], [0, 0], [0, 0], [0, 0], [1, 1]])
    # Even N: the lower median 1 makes both 2s positive.
    np.testing.assert_array_equal(annotator_labels(np.array([[1.0], [1.0], [2.0], [2.0]]))[:, 0], [0, 0, 1, 1])


def test_fewer_than_five_positives() -> None:
    anno = np.array([5, 4, 1, 1, 1, 1, 1, 1], dtype=float)[:, None]  # positives: clips 0 and 1
    scores = np.array([0.8, 0.5, 0.9, 0.7, 0.1, 0.2, 0.3, 0.4])  # order 2, 0, 3, 1, 7, ... -> labels 0 1 0 1 0
    expected = 0.5 * (0 + 0.5) / 2 + 0.5 * (1 / 3 + 0.5) / 2
    assert video_top5_ap(scores, anno)[0] == pytest.approx(expected)
    assert video_top5_map(scores, anno) == pytest.approx(expected)


def test_all_equal_predictions_rank_clips_in_order() -> None:
    anno = np.array([1, 1, 1, 1, 1, 5, 5, 5, 5, 5], dtype=float)[:, None]
    flat = np.zeros(10)
    assert video_top5_map(flat, anno) == 0.0  # stable sort: the first five clips, all negatives
    assert video_top5_map(flat, anno[::-1].copy()) == 1.0
    # Annotators who give every clip the same score have no clip above their median: every AP is 0.
    assert video_top5_map(np.arange(10.0), np.full((10, 3), 3.0)) == 0.0


def test_video_map_averages_annotators_and_top5_map_averages_videos() -> None:
    anno = np.array([[5, 1], [1, 1], [1, 1], [1, 1], [1, 1], [1, 5]], dtype=float)
    scores = np.array([6.0, 5, 4, 3, 2, 1])
    np.testing.assert_allclose(video_top5_ap(scores, anno), [1.0, 0.0])
    assert video_top5_map(scores, anno) == pytest.approx(0.5)
    preds = {"a": scores, "b": scores[::-1].copy()}
    annos = {"a": anno, "b": anno}
    assert top5_map(preds, annos) == pytest.approx((0.5 + video_top5_map(scores[::-1].copy(), anno)) / 2)
    assert top5_map(preds, annos, video_ids=["a"]) == pytest.approx(0.5)


def _umt_reference(scores: list[np.ndarray], annos: list[np.ndarray], k: int = 5) -> float:
    """UMT ``TVSum.evaluate`` transcribed with torch (stable sort for a defined order among equal scores)."""
    collected = []
    for i in range(annos[0].shape[1]):
        video_ap = []
        for score, anno in zip(scores, annos, strict=True):
            inds = torch.argsort(torch.from_numpy(score), descending=True, stable=True)
            label = torch.from_numpy(anno)[:, i]
            label = torch.where(label > label.median(), 1.0, 0.0)
            label = label[inds].tolist()[:k]
            num_gt = sum(label)
            if num_gt == 0:
                video_ap.append(0)
                continue
            hits = ap = rec = 0
            prc = 1
            for j, gt in enumerate(label):
                hits += gt
                _rec, _prc = hits / num_gt, hits / (j + 1)
                ap += (_rec - rec) * (prc + _prc) / 2
                rec, prc = _rec, _prc
            video_ap.append(ap)
        collected.append(sum(video_ap) / len(video_ap))
    return sum(collected) / len(collected)


def test_matches_umt_reference_on_random_videos() -> None:
    rng = np.random.default_rng(0)
    for trial in range(5):
        lengths = rng.integers(3, 60, size=4)
        annos = [rng.integers(1, 6, size=(n, 20)).astype(float) for n in lengths]
        # Rounded scores create ties among predictions too.
        scores = [np.round(rng.normal(size=n), 1 if trial % 2 else 6) for n in lengths]
        ours = top5_map({str(i): s for i, s in enumerate(scores)}, {str(i): a for i, a in enumerate(annos)})
        assert ours == pytest.approx(_umt_reference(scores, annos), abs=1e-12)


def test_bad_inputs_raise() -> None:
    anno = np.ones((6, 20))
    with pytest.raises(ValueError, match="one value per annotated clip"):
        video_top5_ap(np.zeros(5), anno)
    with pytest.raises(ValueError, match="NaN"):
        video_top5_ap(np.array([0, 1, 2, 3, 4, np.nan]), anno)
    with pytest.raises(ValueError, match="no prediction"):
        top5_map({"a": np.zeros(6)}, {"a": anno}, video_ids=["b"])
