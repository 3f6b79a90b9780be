"""The committed example: its files, the scoring against the script, and ``quag example`` end to end."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from quag.pipeline.example import (
    ExampleError,
    ExampleTruth,
    find_examples,
    format_prediction,
    format_score,
    score_prediction,
)
from quag.pipeline.predictor import Prediction, Step
from tests.helpers import REPO

EXAMPLES = REPO / "examples"


def _truth(tmp_path: Path, **fields: object) -> Path:
    data = {
        "video": "v.mp4",
        "query": "Make Tea",
        "duration": 100.0,
        "moment": [20.0, 60.0],
        "steps": [
            {"start": 20.0, "end": 30.0, "sentence": "boil water"},
            {"start": 30.0, "end": 45.0, "sentence": "add the tea bag"},
            {"start": 45.0, "end": 60.0, "sentence": "pour the water"},
        ],
    }
    data.update(fields)
    path = tmp_path / "v.json"
    path.write_text(json.dumps(data))
    return path


def test_the_committed_examples_are_complete() -> None:
    found = find_examples(EXAMPLES)
    assert 1 <= len(found) <= 2
    for path in found:
        truth = ExampleTruth.load(path)
        assert truth.video_path.is_file() and truth.video_path.stat().st_size <= 2 * 2**20
        assert 4 <= len(truth.steps) <= 6 and truth.license.startswith("CC0")
        assert truth.moment == (truth.steps[0].start, truth.steps[-1].end)
        assert all(a.end == b.start for a, b in zip(truth.steps, truth.steps[1:], strict=False))
        assert truth.moment[0] > 0 and truth.moment[1] < truth.duration  # talk before and after the moment
        narration = json.loads(path.read_text())["narration"]
        assert all(n["start"] < n["end"] <= truth.duration for n in narration)


def test_score_against_the_script(tmp_path: Path) -> None:
    truth = ExampleTruth.load(_truth(tmp_path))
    prediction = Prediction(
        "v.mp4",
        "Make Tea",
        100.0,
        (25.0, 65.0),  # IoU with [20, 60] = 35 / 45
        [Step(25.0, 31.0, "boil the water"), Step(31.0, 46.0, "add tea"), Step(46.0, 65.0, "pour it")],
    )
    score = score_prediction(prediction, truth)
    assert score.moment_iou == pytest.approx(35 / 45)
    # IoUs: [25,31] vs [20,30] = 5/11; [31,46] vs [30,45] = 14/16; [46,65] vs [45,60] = 14/20
    assert score.step_precision == pytest.approx(2 / 3) and score.step_recall == pytest.approx(2 / 3)
    assert [(c.sentence, c.caption) for c in score.captions] == [
        ("boil water", "boil the water"),
        ("add the tea bag", "add tea"),
        ("pour the water", "pour it"),
    ]
    assert score.captions[1].iou == pytest.approx(14 / 16)
    text = format_score(score, truth)
    assert "moment IoU 0.78" in text and "precision 0.67 (3 predicted)" in text and "add the tea bag" in text
    assert "moment 25-65 s of 100 s, 3 steps" in format_prediction(prediction)
    assert score.diversity.distinct == 3 and not score.diversity.repetitive
    assert "3 distinct captions for 3 steps" in text
    # no predicted step: both 0, captions empty
    empty = score_prediction(Prediction("v.mp4", "Make Tea", 100.0, (0.0, 10.0), []), truth)
    assert (empty.moment_iou, empty.step_precision, empty.step_recall) == (0.0, 0.0, 0.0)
    assert all(c.caption == "" for c in empty.captions)
    assert empty.to_dict()["step_recall@0.5"] == 0.0
    same = [Step(20.0, 40.0, "add the"), Step(40.0, 50.0, "add the"), Step(50.0, 60.0, "stir")]
    repeated = score_prediction(Prediction("v.mp4", "Make Tea", 100.0, (20.0, 60.0), same), truth)
    assert repeated.diversity.repetitive and "the decoder repeats" in format_score(repeated, truth)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"moment": [30.0, 20.0]}, r"field 'moment' must be \[start, end\] with 0 <= start < end"),
        ({"steps": []}, "field 'steps' must be a non-empty list"),
        ({"steps": [{"start": 1, "end": 2}]}, r"field 'steps\[0\]' must be an object"),
        ({"query": ""}, "field 'query' must be a non-empty string"),
        ({"duration": "long"}, "field 'duration' must be a positive number"),
    ],
)
def test_bad_ground_truth_names_file_and_field(tmp_path: Path, fields: dict[str, object], message: str) -> None:
    with pytest.raises(ExampleError, match=message) as info:
        ExampleTruth.load(_truth(tmp_path, **fields))
    assert str(tmp_path / "v.json") in str(info.value) and "\n" not in str(info.value)


def test_missing_examples_say_how_to_make_them(tmp_path: Path) -> None:
    with pytest.raises(ExampleError, match="make_examples.py"):
        find_examples(tmp_path)
    with pytest.raises(ExampleError, match="not found"):
        ExampleTruth.load(tmp_path / "nothing.json")


def test_an_old_hirest_sim_build_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from quag.cli import main

    old = tmp_path / "hirest-sim"
    old.mkdir()
    (old / "sim_config.json").write_text(json.dumps({"seed": 0, "train_videos": 120, "val_videos": 40}))
    (old / "feature_spec.json").write_text("{}")
    config = str(REPO / "configs" / "sim_speech_cpu.yaml")
    assert main(["example", "--config", config, f"data.root={old}", f"output_dir={tmp_path}"]) == 1
    err = capsys.readouterr().err.strip()
    assert "older quag" in err and "make clean-sim" in err and "\n" not in err and "Traceback" not in err


@pytest.mark.slow
def test_quag_example_end_to_end(tmp_path: Path) -> None:
    """``quag example`` with a tiny speech-only checkpoint on a committed video: Whisper, prediction, score, pages."""
    from quag.cli import main
    from tests.helpers import tiny_speech_checkpoint

    checkpoint = tiny_speech_checkpoint(tmp_path)
    truth = find_examples(EXAMPLES)[0]
    out = tmp_path / "out"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        rc = main(["example", str(truth), "--checkpoint", str(checkpoint), "--out", str(out), "--no-cache"])
    assert rc == 0
    printed = buffer.getvalue()
    assert "moment IoU" in printed and "recall" in printed and f"quag predict {EXAMPLES}" in printed
    stem = truth.stem
    (record,) = json.loads((out / f"{stem}.json").read_text())
    score = json.loads((out / f"{stem}_score.json").read_text())
    assert record["query"] == ExampleTruth.load(truth).query and 0 <= score["moment_iou"] <= 1
    assert len(score["captions"]) == len(ExampleTruth.load(truth).steps)
    page = (out / f"{stem}.html").read_text()
    assert "Score against the script" in page and "<svg" in page
