"""Checked-in predictions -> expected reports; missing/extra counts; split file as step GT; the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from quag.cli import main
from quag.data.annotations import load_split
from quag.evaluation.evaluate import evaluate_files, evaluate_predictions, flat_metrics, format_table
from quag.evaluation.ground_truth import GroundTruthError, step_ground_truth, steps_from_split
from tests.evaluation.helpers import FIXTURES, REAL, TINY_SPLIT, TINY_STEPS

CASES = {
    "moment_retrieval": (TINY_SPLIT, {}),
    "video_retrieval": (TINY_SPLIT, {}),
    "moment_segmentation": (TINY_STEPS, {}),
    "moment_segmentation_preprocessed": (TINY_STEPS, {"preprocess_moment_bounds": True}),
}


def _report(name: str) -> dict:
    gt, options = CASES[name]
    task = name.replace("_preprocessed", "")
    report = evaluate_files(FIXTURES / f"pred_{task}.json", gt, task, per_category=True, **options)
    assert report.pop("prediction_file").endswith(f"pred_{task}.json")
    assert report.pop("ground_truth_file") == str(gt)
    return report


@pytest.mark.parametrize("name", list(CASES))
def test_fixture_reports_match_expected_json(name: str) -> None:
    expected = json.loads((FIXTURES / f"expected_{name}.json").read_text())
    assert _report(name) == expected


def test_moment_retrieval_fixture_by_hand() -> None:
    # clip videos of the GT: A [20,60], C [10,110], D [0,40], E [5,35]
    #   A: pred [20,40] -> 20/40 = 0.5 on paper, 0.5 - eps officially -> miss at 0.5 and 0.7
    #   C: pred [10,90] -> 80/100 = 0.8 -> hit, hit
    #   D: pred [5,33]  -> 28/40 = 0.7 - eps -> hit at 0.5, miss at 0.7
    #   E: no prediction -> miss, counted as missing
    # R@0.5 = 2/4, R@0.7 = 1/4; extras: vidB (a non-clip video) and vidZ (unknown query)
    all_ = _report("moment_retrieval")["metrics"]["all"]
    assert (all_["R@0.5"], all_["R@0.7"], all_["missing"]) == (50.0, 25.0, 1)


def test_segmentation_fixture_by_hand() -> None:
    # A: GT [20,30],[30,45],[45,60]; pred [20,25] (IoU 0.5, not > 0.5), [25,45] (with [30,45]: 15/20 = 0.75),
    #    [45,60] (exact) -> precision = recall = 2/3 at 0.5 and 0.7
    # C: GT [10,40],[40,80],[80,110]; pred [0,60] (with [10,40]: 30/60 = 0.5, not > 0.5), [60,110] (with
    #    [80,110]: 30/50 = 0.6) -> at 0.5 precision 1/2, recall 1/3; at 0.7 both 0
    # E: empty prediction list -> 0 and 0 (counted in empty_predictions)
    # precision@0.5 = (2/3 + 1/2 + 0) / 3, recall@0.5 = (2/3 + 1/3 + 0) / 3, both @0.7 = (2/3 + 0 + 0) / 3
    m = _report("moment_segmentation")["metrics"]["all"]
    assert m["precision"]["0.5"] == pytest.approx(100 * (2 / 3 + 1 / 2) / 3)
    assert m["recall"]["0.5"] == pytest.approx(100 / 3)
    assert m["precision"]["0.7"] == m["recall"]["0.7"] == pytest.approx(100 * 2 / 9)
    # preprocessing: A unchanged; C's segments both touch the GT span ends -> [[10, 110]] (IoU <= 0.4 with
    # every step); E -> [[5, 35]] (IoU 0.5 with each step, not > 0.5): everything is (2/3 + 0 + 0) / 3
    p = _report("moment_segmentation_preprocessed")["metrics"]["all"]
    assert p["precision"]["0.5"] == p["recall"]["0.5"] == pytest.approx(100 * 2 / 9)


def test_missing_video_is_a_counted_miss() -> None:
    preds = json.loads((FIXTURES / "pred_moment_segmentation.json").read_text())
    del preds["vidA.mp4"]
    report = evaluate_predictions(preds, step_ground_truth(TINY_STEPS), "moment_segmentation")
    assert report["counts"]["missing"] == 1 and report["missing_items"] == ["vidA.mp4"]
    assert report["metrics"]["all"]["missing"] == 1
    assert report["metrics"]["all"]["recall"]["0.5"] == pytest.approx(100 / 9)  # only C's 1/3 remains


def test_split_file_works_as_step_ground_truth() -> None:
    preds = FIXTURES / "pred_moment_segmentation.json"
    from_split = evaluate_files(preds, TINY_SPLIT, "moment_segmentation")
    from_steps = evaluate_files(preds, TINY_STEPS, "moment_segmentation")
    assert from_split["metrics"] == from_steps["metrics"]


def test_real_val_split_converts_to_the_formatted_step_file() -> None:
    formatted = step_ground_truth(REAL / "val_testing" / "formated_moment_evaluation_gt.json")
    converted = steps_from_split(load_split(REAL, "val"))
    assert set(converted) == set(formatted) and len(converted) == 78
    for video, gt in formatted.items():
        assert converted[video].segments == gt.segments
        assert converted[video].sentences == tuple(s.strip() for s in gt.sentences)


def test_ground_truth_errors_name_the_video(tmp_path: Path) -> None:
    bad = {"v.mp4": {"captions": [{"start": 0, "end": 1, "sentence": "a"}], "bounds": [[0, float("nan")]]}}
    with pytest.raises(GroundTruthError, match=r"video 'v.mp4': field 'bounds\[0\]'"):
        step_ground_truth(bad)
    with pytest.raises(GroundTruthError, match=r"video 'v.mp4': field 'bounds' is empty"):
        step_ground_truth({"v.mp4": {"captions": [], "bounds": []}})
    with pytest.raises(GroundTruthError, match="retrieval ground truth is a split file"):
        evaluate_predictions({}, {"v.mp4": {"captions": [], "bounds": [[0, 1]]}}, "moment_retrieval")


def test_per_category_needs_categories() -> None:
    with pytest.raises(ValueError, match="categories.json"):
        evaluate_predictions({}, load_split(TINY_SPLIT.parents[1], "val"), "moment_retrieval", per_category=True)


def test_flat_metrics_and_table() -> None:
    report = _report("moment_segmentation")
    flat = flat_metrics(report)
    assert set(flat) == {f"moment_segmentation/{m}@{t}" for m in ("precision", "recall") for t in ("0.5", "0.7")}
    table = format_table(report)
    assert "precision@0.5" in table and "Hobbies and Crafts" in table and "empty_predictions 1" in table


def test_cli_evaluate_writes_report_and_preprocessed_predictions(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out, processed = tmp_path / "report.json", tmp_path / "processed.json"
    argv = [
        "evaluate",
        "--task",
        "moment_segmentation",
        str(FIXTURES / "pred_moment_segmentation.json"),
        str(TINY_STEPS),
        "--per-category",
        "--preprocess-moment-bounds",
        "--write-preprocessed",
        str(processed),
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    report.pop("prediction_file"), report.pop("ground_truth_file")
    assert report == json.loads((FIXTURES / "expected_moment_segmentation_preprocessed.json").read_text())
    assert json.loads(processed.read_text())["vidC.mp4"]["bounds"] == [[10.0, 110.0]]
    assert "recall@0.5" in capsys.readouterr().out


def test_cli_reports_malformed_predictions(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pred = tmp_path / "mr.json"
    pred.write_text(json.dumps({"Make pancakes": {"vidA.mp4": {"bounds": [3]}}}))
    assert (
        main(["evaluate", "--task", "moment_retrieval", str(pred), str(TINY_SPLIT), "--out", str(tmp_path / "r")]) == 1
    )
    assert "video 'vidA.mp4': field 'bounds'" in capsys.readouterr().err


def test_evaluation_never_imports_the_model_or_torch() -> None:
    code = (
        "import sys, quag.evaluation, quag.evaluation.baselines, quag.commands.evaluate, quag.commands.baselines\n"
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('quag.models', 'quag.training'))]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
