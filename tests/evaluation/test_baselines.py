"""Baselines: definitions on the tiny root, the real val scores of the feature-free ones, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from quag.cli import main
from quag.data.annotations import load_split
from quag.evaluation import baselines as bl
from quag.evaluation.captions import CaptionOptions
from quag.evaluation.evaluate import evaluate_predictions
from quag.evaluation.ground_truth import step_ground_truth
from tests.evaluation.helpers import REAL, TINY, TINY_STEPS

# Hand-made query embeddings: pancakes ~ waffles, crane ~ boat, tea equidistant (tie -> first train video).
TABLE = {
    "Make waffles": np.array([1.0, 0.0]),
    "Fold a paper boat": np.array([0.0, 1.0]),
    "Make pancakes": np.array([0.9, 0.1]),
    "Fold a paper crane": np.array([0.1, 0.9]),
    "Brew green tea": np.array([0.5, 0.5]),
}


def test_train_statistics() -> None:
    train = load_split(TINY, "train")
    # clip moments: tr1 [10,90]/100, tr3 [0,25]/50, tr4 [50,150]/200 -> mean start (0.1 + 0 + 0.25) / 3
    assert bl.mean_relative_span(train) == pytest.approx(((0.1 + 0 + 0.25) / 3, (0.9 + 0.5 + 0.75) / 3))
    assert bl.median_num_steps(train) == 3  # steps 3 and 2 -> median 2.5 -> rounded half up
    assert bl.most_frequent_caption(train) == "mix it"  # "Mix it" and "mix it " count together


def test_baseline_predictions_are_official_formats() -> None:
    train, val = load_split(TINY, "train"), load_split(TINY, "val")
    gt = step_ground_truth(TINY_STEPS)
    moments = bl.mean_span_moments(val, (0.25, 0.75))
    assert moments["Make pancakes"] == {"vidA.mp4": {"bounds": [25.05, 75.15]}}  # v_duration 100.2
    assert set(bl.whole_video_moments(val)["Fold a paper crane"]) == {"vidC.mp4", "vidD.mp4"}
    assert bl.uniform_segments(gt, 2)["vidE.mp4"] == {"bounds": [[5.0, 20.0], [20.0, 35.0]]}
    preds, donors = bl.nearest_train_captions(train, val, gt, TABLE)
    assert donors == {"vidA.mp4": "tr1.mp4", "vidC.mp4": "tr3.mp4", "vidE.mp4": "tr1.mp4"}
    # vidC has 3 steps, tr3 only 2 headings: the last one repeats
    assert [c["sentence"] for c in preds["vidC.mp4"]["captions"]] == ["Fold the paper", "mix it", "mix it"]
    assert [c["sentence"] for c in preds["vidE.mp4"]["captions"]] == ["Mix it", "Pour batter"]
    calls = []

    def embed(texts: list[str]) -> np.ndarray:  # any encoder works: texts -> (N, D)
        calls.append(texts)
        return np.stack([TABLE[t] * 3 for t in texts])  # scale does not matter (cosine)

    assert bl.nearest_train_captions(train, val, gt, embed)[1] == donors and len(calls) == 1
    with pytest.raises(KeyError, match="no precomputed embedding"):
        bl.nearest_train_captions(train, val, gt, {"Make waffles": np.ones(2)})


def test_run_baselines_on_the_tiny_root() -> None:
    result = bl.run_baselines(TINY, "val", embed=TABLE, caption_options=CaptionOptions(metrics=("BLEU",)))
    assert result["parameters"]["median_num_steps"] == 3
    mr = result["results"]["moment_retrieval"]
    assert mr["whole_video"]["counts"]["ground_truth"] == 4
    sc = result["results"]["step_captioning"]["frequent_caption"]
    assert sc["counts"]["captions"] == 8 and sc["metrics"]["all"]["Total"] == 3


def test_real_val_scores_of_the_moment_baselines() -> None:
    train, val = load_split(REAL, "train"), load_split(REAL, "val")
    steps = step_ground_truth(REAL / "val_testing" / "formated_moment_evaluation_gt.json")

    def score(pred: dict, task: str, **kw: bool) -> dict:
        return evaluate_predictions(pred, val if task == "moment_retrieval" else steps, task, **kw)["metrics"]["all"]

    whole = score(bl.whole_video_moments(val), "moment_retrieval")
    assert (whole["R@0.5"], whole["R@0.7"]) == pytest.approx((133 / 193 * 100, 46 / 193 * 100))
    mean = score(bl.mean_span_moments(val, bl.mean_relative_span(train)), "moment_retrieval")
    assert (mean["R@0.5"], mean["R@0.7"]) == pytest.approx((154 / 193 * 100, 107 / 193 * 100))
    k = bl.median_num_steps(train)
    assert k == 6
    uni = score(bl.uniform_segments(steps, k), "moment_segmentation")
    assert uni["precision"] == pytest.approx({"0.5": 41.45299145299144, "0.7": 15.598290598290601})
    assert uni["recall"] == pytest.approx({"0.5": 38.68782952359398, "0.7": 14.720455093758261})
    pre = score(bl.uniform_segments(steps, k), "moment_segmentation", preprocess_moment_bounds=True)
    assert pre["precision"] == pytest.approx({"0.5": 40.76923076923077, "0.7": 14.871794871794867})
    assert pre["recall"] == pytest.approx({"0.5": 34.65541251040774, "0.7": 13.89161282826441})


def test_cli_baselines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    class TableEncoder:  # stands in for all-MiniLM-L6-v2, which the command builds
        name, dim = "test table", 2

        def __init__(self, model_path: Path | None = None) -> None:
            pass

        def encode(self, texts: list[str]) -> np.ndarray:
            return np.stack([TABLE[t] for t in texts])

    monkeypatch.setattr("quag.pipeline.text.MiniLMEncoder", TableEncoder)
    out = tmp_path / "baselines.json"
    argv = ["baselines", "--data", str(TINY), "--split", "val", "--caption-metrics", "BLEU", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "uniform_steps+preprocess" in printed and "nearest_caption" in printed
    assert "not computed: METEOR: not requested" in printed
    saved = json.loads(out.read_text())
    assert saved["parameters"]["nearest_caption_embedder"] == "test table"
