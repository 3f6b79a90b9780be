"""Distinct captions per step and the repeating-decoder flag (hand-computed cases)."""

from __future__ import annotations

import pytest

from quag.evaluation.caption_diversity import (
    REPEAT_SHARE,
    caption_diversity,
    distinct_caption_ratio,
    prediction_captions,
)


def test_distinct_ratio_compares_normalised_captions() -> None:
    assert distinct_caption_ratio(["add salt", "Add  salt", "stir"]) == pytest.approx(2 / 3)
    assert distinct_caption_ratio([]) == 1.0
    assert distinct_caption_ratio(["", "", "mix"]) == pytest.approx(2 / 3)  # empty captions count too


def test_one_caption_on_most_steps_is_flagged() -> None:
    d = caption_diversity(["add the on the"] * 3 + ["mix flour", "bake"])
    assert (d.captions, d.distinct, d.most_common) == (5, 3, "add the on the")
    assert d.most_common_share == pytest.approx(0.6) and d.repetitive
    assert "the decoder repeats" in d.summary() and "3 distinct captions for 5 steps (60%)" in d.summary()
    half = caption_diversity(["a", "a", "b", "c"])
    assert half.most_common_share == REPEAT_SHARE and not half.repetitive  # exactly half is not "most"
    assert caption_diversity([]).to_dict() == {
        "captions": 0, "distinct": 0, "distinct_ratio": 1.0, "most_common": "", "most_common_share": 0.0,
        "repetitive": False,
    }  # fmt: skip


def test_prediction_captions_reads_the_official_format() -> None:
    preds = {"a.mp4": {"captions": [{"sentence": "x"}, {"sentence": "y"}]}, "b.mp4": {"captions": []}}
    assert prediction_captions(preds) == ["x", "y"]
    with pytest.raises(ValueError, match="'b.mp4'"):
        prediction_captions({"b.mp4": {"captions": [{"text": "x"}]}})
