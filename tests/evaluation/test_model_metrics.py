"""NLI entailment and BERTScore on tiny random BERT models saved to tmp_path (no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from quag.evaluation.captions import CaptionOptions  # noqa: E402
from quag.evaluation.evaluate import evaluate_predictions  # noqa: E402
from quag.evaluation.ground_truth import step_ground_truth  # noqa: E402
from quag.evaluation.metrics.bertscore import BertScorer  # noqa: E402
from quag.evaluation.metrics.entailment import EntailmentScorer  # noqa: E402
from tests.evaluation.helpers import TINY_STEPS  # noqa: E402

VOCAB = Path(__file__).resolve().parents[2] / "src" / "quag" / "assets" / "bert-base-uncased-vocab.txt"
ID2LABEL = {0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}


def _tiny_bert_config(**extra: object) -> transformers.BertConfig:
    return transformers.BertConfig(
        vocab_size=30522,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        **extra,
    )


def _save_tokenizer(path: Path) -> None:
    tokenizer = transformers.BertTokenizer(vocab=str(VOCAB), do_lower_case=True)
    assert tokenizer("add salt")["input_ids"] == [101, 5587, 5474, 102]  # the real bert-base-uncased ids
    tokenizer.save_pretrained(path)


@pytest.fixture(scope="module")
def nli_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 3-way classifier whose output bias makes ENTAILMENT win for every pair."""
    path = tmp_path_factory.mktemp("nli")
    torch.manual_seed(0)
    config = _tiny_bert_config(num_labels=3, id2label=ID2LABEL, label2id={v: k for k, v in ID2LABEL.items()})
    model = transformers.BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 0.0, 1.0]))
    model.save_pretrained(path)
    _save_tokenizer(path)
    return path


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("encoder")
    torch.manual_seed(0)
    transformers.BertModel(_tiny_bert_config()).save_pretrained(path)
    _save_tokenizer(path)
    return path


def test_entailment_label_comes_from_id2label(nli_dir: Path) -> None:
    scorer = EntailmentScorer(nli_dir, batch_size=2)
    assert scorer.entailment_index == 2
    labels = scorer.predict(["a man cooks", "b", "c"], ["a person cooks", "x", "y"])  # 2 batches
    assert labels == [2, 2, 2]
    assert scorer.percentages(labels) == {"Entailment": 100.0, "Contradiction": 0.0, "Neutral": 0.0}
    assert scorer.percentages([0, 2, 1, 1]) == {"Entailment": 25.0, "Contradiction": 25.0, "Neutral": 50.0}
    with pytest.raises(ValueError, match="cannot tell which class is entailment"):
        EntailmentScorer(nli_dir, entailment_label="entails")
    assert EntailmentScorer(nli_dir, entailment_label="neutral").entailment_index == 1


def test_bertscore_identical_sentences_score_one(encoder_dir: Path) -> None:
    scorer = BertScorer(encoder_dir)
    assert scorer.num_layers == 2  # a BERT: the last layer by default
    p, r, f = scorer.score(["fold the paper in half", "add salt", ""], ["fold the paper in half", "add sugar", "x"])
    assert p[0] == pytest.approx(1.0, abs=1e-6) and r[0] == pytest.approx(1.0, abs=1e-6)
    assert f[0] == pytest.approx(1.0, abs=1e-6)
    assert 0 < f[1] < 1
    assert (p[2], r[2], f[2]) == (0.0, 0.0, 0.0)  # empty candidate


def test_bertscore_matches_a_naive_reference(encoder_dir: Path) -> None:
    # greedy matching written out from scratch on the same layer, one sentence at a time (no batching)
    scorer = BertScorer(encoder_dir, num_layers=1, batch_size=2)
    cand, ref = "mix the flour and eggs", "mix flour and eggs in a bowl"
    tok = transformers.AutoTokenizer.from_pretrained(str(encoder_dir))
    model = transformers.AutoModel.from_pretrained(str(encoder_dir)).eval()

    def embed(text: str) -> np.ndarray:
        ids = tok(text, return_tensors="pt")
        with torch.no_grad():
            h = model(**ids, output_hidden_states=True).hidden_states[1][0]
        return torch.nn.functional.normalize(h, dim=-1).numpy()

    y, x = embed(cand), embed(ref)
    sim = y @ x.T
    p = sim[1:-1].max(axis=1).mean()  # CLS/SEP weigh 0 but stay in the maxima
    r = sim.max(axis=0)[1:-1].mean()
    got_p, got_r, got_f = scorer.score([cand, "other words here"], [ref, "and more"])
    assert got_p[0] == pytest.approx(p, abs=1e-5) and got_r[0] == pytest.approx(r, abs=1e-5)
    assert got_f[0] == pytest.approx(2 * p * r / (p + r), abs=1e-5)


def test_model_scores_in_a_report(nli_dir: Path, encoder_dir: Path) -> None:
    preds = {"vidA.mp4": {"captions": [{"sentence": "mix flour and eggs"}]}}  # vidC, vidE missing
    options = CaptionOptions(metrics=(), nli_model=str(nli_dir), bertscore_model=str(encoder_dir))
    report = evaluate_predictions(preds, step_ground_truth(TINY_STEPS), "step_captioning", caption_options=options)
    m = report["metrics"]["all"]
    assert m["Entailment"] == 100.0 and report["counts"]["missing"] == 2
    assert 0 <= m["BERTScore_F1"] < 1  # 7 of 8 candidates are empty strings and score 0
    assert "ENTAILMENT" in report["scorers"]["Entailment"] and "layer 2" in report["scorers"]["BERTScore_F1"]
