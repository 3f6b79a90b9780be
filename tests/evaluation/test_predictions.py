"""Prediction formats: official JSON and JSONL parse to the same records; malformed files name video and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quag.evaluation.predictions import (
    Caption,
    CaptionPrediction,
    MomentPrediction,
    PredictionError,
    load_predictions,
    parse_predictions,
    write_predictions,
)
from tests.evaluation.helpers import FIXTURES

TASKS = ["video_retrieval", "moment_retrieval", "moment_segmentation", "step_captioning"]


@pytest.mark.parametrize("task", TASKS)
def test_official_json_and_jsonl_round_trip(task: str, tmp_path: Path) -> None:
    preds = load_predictions(FIXTURES / f"pred_{task}.json", task)
    write_predictions(tmp_path / "p.jsonl", preds)
    write_predictions(tmp_path / "p.json", preds)
    again = load_predictions(tmp_path / "p.jsonl", task)
    assert again.items == preds.items
    assert load_predictions(tmp_path / "p.json", task).items == preds.items


def test_parsed_fields_and_ignored_extras() -> None:
    mr = load_predictions(FIXTURES / "pred_moment_retrieval.json", "moment_retrieval")
    assert ("Unknown query", "vidZ.mp4") in mr.items  # the numeric top-level "loss" is skipped
    assert mr.items[("Make pancakes", "vidA.mp4")] == MomentPrediction("Make pancakes", "vidA.mp4", 20.0, 40.0)
    sc = load_predictions(FIXTURES / "pred_step_captioning.json", "step_captioning")
    assert sc.items["vidA.mp4"].captions[1] == Caption("pour the batter into the pan", 30.0, 45.0)
    records = [CaptionPrediction("v.mp4", (Caption("a"),)), {"video": "w.mp4", "captions": [{"sentence": "b"}]}]
    assert set(parse_predictions(records, "step_captioning").items) == {"v.mp4", "w.mp4"}


@pytest.mark.parametrize(
    ("task", "obj", "message"),
    [
        (
            "moment_retrieval",
            {"q": {"v.mp4": {"bounds": [float("nan"), 3]}}},
            r"query 'q' video 'v.mp4': field 'bounds' must be a finite number",
        ),
        ("moment_retrieval", {"q": {"v.mp4": {"bounds": [1, 2, 3]}}}, r"video 'v.mp4': field 'bounds' must be \[start"),
        ("moment_retrieval", {"q": {"v.mp4": {"span": [1, 2]}}}, r"video 'v.mp4': missing field 'bounds'"),
        (
            "moment_retrieval",
            {"v.mp4": {"bounds": [[0, 1], [1, 2]]}},
            r"query 'v.mp4': found 'bounds' directly .* moment_segmentation format",
        ),
        (
            "moment_segmentation",
            {"q": {"v.mp4": {"bounds": [0, 1]}}},
            r"video 'q': missing field 'bounds'.*moment_retrieval",
        ),
        ("moment_segmentation", {"v.mp4": {"bounds": [0, 10]}}, r"video 'v.mp4': field 'bounds' is a single"),
        (
            "moment_segmentation",
            {"v.mp4": {"bounds": [[0, 1], [1, float("inf")]]}},
            r"video 'v.mp4': field 'bounds\[1\]' must be a finite",
        ),
        ("moment_segmentation", {"v.mp4": {"bounds": [[0, 1], [1]]}}, r"video 'v.mp4': field 'bounds\[1\]' must be \["),
        ("step_captioning", {"v.mp4": {"captions": []}}, r"video 'v.mp4': field 'captions' is empty"),
        ("step_captioning", {"v.mp4": {"captions": ["text"]}}, r"video 'v.mp4': expected an object captions\[0\]"),
        (
            "step_captioning",
            {"v.mp4": {"captions": [{"sentence": 3}]}},
            r"video 'v.mp4': field 'captions\[0\].sentence' must be a string",
        ),
        (
            "step_captioning",
            {"v.mp4": {"captions": [{"sentence": "a", "start": float("nan"), "end": 2}]}},
            r"video 'v.mp4': field 'captions\[0\].start' must be a finite",
        ),
        ("video_retrieval", {"q": {"videos": ["a.mp4"], "scores": [0.1, 0.2]}}, r"query 'q': field 'scores' has 2"),
        (
            "video_retrieval",
            {"q": {"videos": ["a.mp4"], "scores": [float("nan")]}},
            r"query 'q': field 'scores\[0\]' must be a finite score",
        ),
    ],
)
def test_malformed_entries_name_video_and_field(task: str, obj: dict, message: str) -> None:
    with pytest.raises(PredictionError, match=message):
        parse_predictions(obj, task, source="preds.json")


def test_nan_written_in_a_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "mr.json"
    path.write_text('{"q": {"v.mp4": {"bounds": [NaN, 4]}}}')
    with pytest.raises(PredictionError, match=r"mr.json: query 'q' video 'v.mp4': field 'bounds'"):
        load_predictions(path, "moment_retrieval")


def test_jsonl_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "ms.jsonl"
    lines = [{"video": "a.mp4", "bounds": [[0, 1]]}, {"video": "a.mp4", "bounds": [[1, 2]]}]
    path.write_text("\n".join(json.dumps(x) for x in lines))
    with pytest.raises(PredictionError, match=r"ms.jsonl line 2: duplicate prediction for 'a.mp4'"):
        load_predictions(path, "moment_segmentation")
    path.write_text('{"bounds": [[0, 1]]}\n')
    with pytest.raises(PredictionError, match=r"line 1: missing field 'video'"):
        load_predictions(path, "moment_segmentation")
    path.write_text("{not json\n")
    with pytest.raises(PredictionError, match=r"line 1: not valid JSON"):
        load_predictions(path, "moment_segmentation")


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_predictions(tmp_path / "absent.json", "moment_retrieval")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(PredictionError, match="JSON object at the top level"):
        load_predictions(tmp_path / "list.json", "moment_retrieval")
    with pytest.raises(ValueError, match="unknown task"):
        parse_predictions({}, "summarization")
