"""coco-caption metrics (Java): three pairs with fixed values, tokenizer edge cases, the step-captioning fixture."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from quag.evaluation.captions import CaptionOptions, pair_captions
from quag.evaluation.evaluate import evaluate_files, evaluate_predictions
from quag.evaluation.ground_truth import step_ground_truth
from quag.evaluation.metrics import captioning as coco
from quag.evaluation.predictions import load_predictions
from tests.evaluation.helpers import FIXTURES, TINY_STEPS

REFS = ["Mix flour and eggs in a bowl", "Pour the batter into the hot pan.", "Flip the pancake"]
CANDS = ["Mix the flour and eggs", "pour the batter in a pan", "serve with syrup"]
NO_JAVA_METRICS = ("BLEU", "ROUGE_L", "CIDEr")


def test_three_pairs(java: str, meteor: coco.MeteorScorer) -> None:
    tokens = coco.ptb_tokenize([s.lower() for s in REFS + CANDS], java)
    refs, cands = tokens[:3], tokens[3:]
    assert refs[1] == "pour the batter into the hot pan"  # PTB tokens, final period removed
    # BLEU-1 by hand: clipped unigram matches 4 + 4 + 0 of 5 + 6 + 3 candidate tokens; closest reference
    # lengths 7 + 7 + 3 = 17 > 14, so BP = exp(1 - 17/14): BLEU-1 = 8/14 * exp(-3/14) = 0.4612
    bleu = coco.bleu(cands, refs)
    assert bleu[0] == pytest.approx(8 / 14 * math.exp(1 - 17 / 14), rel=1e-6)
    # Values computed once with pycocoevalcap 1.2's own PTBTokenizer + Bleu/Rouge/Cider/Meteor classes (the
    # language_evaluation stack HiREST calls); our wrappers gave bit-identical numbers.
    assert bleu == [0.46121014108004976, 0.36791841482201026, 0.3011572472001812, 4.5823336937358505e-05]
    assert coco.rouge_l(cands, refs) == 0.4180600094135864
    assert coco.cider(cands, refs) == 2.0991796608658357
    corpus, items = meteor.score(cands, refs)
    assert corpus == pytest.approx(0.26574111934482647, rel=1e-12)
    assert items == pytest.approx([0.3317150430710593, 0.32829530035898663, 0.0], rel=1e-12)


def test_ptb_tokenizer_keeps_alignment_with_empty_and_multiline_sentences(java: str) -> None:
    sentences = ["", "Hello, World!", "two\nlines", "", "  ", "Don't stop -- ok...", ""]
    assert coco.ptb_tokenize(sentences, java) == ["", "hello world", "two lines", "", "", "do n't stop ok", ""]
    assert coco.ptb_tokenize([], java) == []


def test_step_captioning_fixture_matches_expected_json(meteor: coco.MeteorScorer) -> None:
    options = CaptionOptions(metrics=("BLEU", "METEOR", "ROUGE_L", "CIDEr"))
    report = evaluate_files(
        FIXTURES / "pred_step_captioning.json",
        TINY_STEPS,
        "step_captioning",
        per_category=True,
        caption_options=options,
        meteor=meteor,
    )
    expected = json.loads((FIXTURES / "expected_step_captioning.json").read_text())
    for group, values in expected["metrics"].items():
        got = report["metrics"][group]
        assert got.pop("METEOR") == pytest.approx(values.pop("METEOR"), rel=1e-12)  # parsed from Java's text
        assert got == values
    for key in ("counts", "missing_items", "extra_items", "options"):
        assert report[key] == expected[key]
    assert set(report["scorers"]) == {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr"}
    assert set(report["not_computed"]) == {"SPICE", "Entailment", "BERTScore_F1", "CLIPScore"}
    assert report["not_computed"]["SPICE"] == "not requested"


def test_pairing_counts_and_empty_strings() -> None:
    preds = load_predictions(FIXTURES / "pred_step_captioning.json", "step_captioning")
    gt = step_ground_truth(TINY_STEPS)
    del preds.items["vidE.mp4"]
    videos, refs, cands, counts, missing = pair_captions(preds, gt)
    assert videos == ["vidA.mp4"] * 3 + ["vidC.mp4"] * 3 + ["vidE.mp4"] * 2
    assert refs[1] == "pour batter in pan "  # lowercased, as written in the GT file
    assert cands[0] == "mix the flour and eggs."
    assert cands[5] == ""  # vidC has 2 captions for 3 steps: the third is scored as an empty string
    assert cands[6:] == ["", ""]  # vidE has no prediction at all
    assert missing == ["vidE.mp4"]
    assert counts == {"missing_captions": 1, "extra_captions": 0, "span_mismatches": 1}


def test_without_java_coco_metrics_are_not_computed() -> None:
    preds = json.loads((FIXTURES / "pred_step_captioning.json").read_text())
    options = CaptionOptions(metrics=NO_JAVA_METRICS, java="/nonexistent/java")
    report = evaluate_predictions(preds, step_ground_truth(TINY_STEPS), "step_captioning", caption_options=options)
    assert report["metrics"]["all"] == {"Total": 3, "missing": 0}
    for key in ("Bleu_4", "ROUGE_L", "CIDEr"):
        assert "Java not found" in report["not_computed"][key]
    assert report["not_computed"]["METEOR"] == "not requested"


def test_spice_is_not_computed_without_corenlp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jars, reason = coco.find_corenlp(tmp_path)
    assert jars is None and "stanford-corenlp-3.6.0.jar" in reason and "never downloaded" in reason
    for name in coco.CORENLP_JARS:
        (tmp_path / name).write_bytes(b"")
    monkeypatch.setenv(coco.CORENLP_ENV, str(tmp_path))
    assert coco.find_corenlp() == ([tmp_path / j for j in coco.CORENLP_JARS], "")


def test_caption_metric_names() -> None:
    assert CaptionOptions(metrics=("cider", "Bleu_1", "BLEU", "meteor")).metrics == ("Bleu_4", "METEOR", "CIDEr")
    with pytest.raises(ValueError, match="unknown caption metrics"):
        CaptionOptions(metrics=("BLEURT",))


def test_spice_failure_is_reported_and_the_rest_still_scores(java: str, tmp_path: Path) -> None:
    # Empty stand-ins for the CoreNLP jars: SpiceScorer starts (class path and main class are right) and then
    # fails on the missing CoreNLP classes; the report says why and keeps the other metrics.
    for name in coco.CORENLP_JARS:
        (tmp_path / name).write_bytes(b"")
    preds = json.loads((FIXTURES / "pred_step_captioning.json").read_text())
    options = CaptionOptions(metrics=("BLEU", "SPICE"), spice_corenlp_dir=str(tmp_path))
    report = evaluate_predictions(preds, step_ground_truth(TINY_STEPS), "step_captioning", caption_options=options)
    assert "SPICE failed" in report["not_computed"]["SPICE"] and "SpiceScorer" in report["not_computed"]["SPICE"]
    assert "SPICE" not in report["metrics"]["all"] and "Bleu_4" in report["metrics"]["all"]
