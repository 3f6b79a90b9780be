"""Caption entailment with a local NLI sequence classifier (premise = reference, hypothesis = prediction).

HiREST uses AllenNLP's SNLI decomposable-attention + ELMo model, which needs torch < 1.13 and cannot be
installed next to a current stack. This module runs any ``transformers`` sequence-classification NLI checkpoint
from a local folder instead (e.g. an MNLI/SNLI RoBERTa or DeBERTa); nothing is downloaded. The label of each
pair is the argmax of the logits, read through the model config's ``id2label``; the entailment label is the one
whose name starts with "entail" (case-insensitive) unless given explicitly. Numbers from a different NLI model
are not the paper's numbers: the evaluator records which model produced them.

``Entailment = 100 * |{i : argmax_c p(c | premise_i, hypothesis_i) = entailment}| / N``, and the same
percentage for every other label (official keys ``"Contradiction"`` and ``"Netural"`` [sic] become
``"Contradiction"`` and ``"Neutral"``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


class EntailmentScorer:
    """Batch NLI classifier loaded with ``AutoTokenizer`` + ``AutoModelForSequenceClassification``.

    Args:
        model_path: local folder with ``config.json``, weights and tokenizer files.
        device: torch device string.
        batch_size: pairs per forward pass.
        entailment_label: name of the entailment class in ``id2label``; default: the label starting "entail".
        max_length: truncation length in tokens.
    """

    def __init__(
        self,
        model_path: str | Path,
        device: str = "cpu",
        batch_size: int = 64,
        entailment_label: str | None = None,
        max_length: int = 512,
    ) -> None:
        path = Path(model_path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{path} is not a transformers model folder (no config.json); NLI models are "
                "never downloaded, pass a local sequence-classification checkpoint"
            )
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModelForSequenceClassification.from_pretrained(str(path), local_files_only=True)
        self.model.eval().to(device)
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length
        self.path = path
        self.labels = {int(i): str(name) for i, name in self.model.config.id2label.items()}
        self.entailment_index = self._find_entailment(entailment_label)

    def _find_entailment(self, wanted: str | None) -> int:
        names = {i: n.lower() for i, n in self.labels.items()}
        hits = [i for i, n in names.items() if (n == wanted.lower() if wanted else n.startswith("entail"))]
        if len(hits) != 1:
            raise ValueError(
                f"{self.path}: cannot tell which class is entailment from id2label {self.labels}; "
                "pass entailment_label (CLI: --nli-entailment-label) naming it"
            )
        return hits[0]

    @property
    def description(self) -> str:
        return f"NLI classifier {self.path} (id2label {self.labels}; entailment = index {self.entailment_index})"

    def predict(self, premises: Sequence[str], hypotheses: Sequence[str]) -> list[int]:
        """Argmax class index of each (premise, hypothesis) pair."""
        import torch

        if len(premises) != len(hypotheses):
            raise ValueError(f"{len(premises)} premises but {len(hypotheses)} hypotheses")
        out: list[int] = []
        with torch.inference_mode():
            for k in range(0, len(premises), self.batch_size):
                enc = self.tokenizer(
                    list(premises[k : k + self.batch_size]),
                    list(hypotheses[k : k + self.batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                out.extend(self.model(**enc).logits.argmax(dim=-1).tolist())
        return out

    def percentages(self, predicted: Sequence[int]) -> dict[str, float]:
        """``{"Entailment": %, <other label>: %}`` of a list of class indices (0 for an empty list)."""
        n = len(predicted)
        out = {"Entailment": 100 * sum(p == self.entailment_index for p in predicted) / n if n else 0.0}
        for i, name in sorted(self.labels.items()):
            if i != self.entailment_index:
                out[name.capitalize()] = 100 * sum(p == i for p in predicted) / n if n else 0.0
        return out
