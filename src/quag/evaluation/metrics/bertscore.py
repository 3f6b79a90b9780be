"""BERTScore (Zhang et al., ICLR 2020) from a local ``transformers`` encoder, with the ``bert_score`` defaults.

HiREST calls ``bert_score.score(cands, refs, lang="en")``: roberta-large, the output of layer 17, no IDF, no
baseline rescaling, F1 averaged over pairs on a 0-1 scale. This is the same computation written out, so it runs
offline on CPU from a local model folder (the official call hard-codes a CUDA device):

* each sentence is stripped and encoded with the tokenizer's special tokens (an empty sentence becomes just
  ``[CLS] [SEP]``; byte-level BPE tokenizers get a leading space, as ``bert_score`` adds);
* ``x_i`` and ``y_j`` are the L2-normalised hidden states of layer ``L`` (``hidden_states[L]``, 0 = embeddings)
  of the reference and candidate tokens;
* ``P = sum_j w_j max_i x_i . y_j / sum_j w_j`` over candidate tokens, ``R = sum_i w_i max_j x_i . y_j /
  sum_i w_i`` over reference tokens, ``F1 = 2 P R / (P + R)``; without IDF every weight is 1 except the CLS and
  SEP tokens, which weigh 0 but still take part in the maxima;
* a pair whose candidate or reference is empty scores ``P = R = F1 = 0``.

``bert_score`` batches sentences with padding and multiplies padded similarities by 0 before the maxima, so
its result can differ from this one only when every cosine of a token is negative (never the case in practice
for contextual embeddings). It also runs in float32 on GPU, so expect agreement to about 1e-6.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROBERTA_LARGE_LAYER = 17
"""``bert_score``'s layer for roberta-large (the official BERTScore model of HiREST)."""


class BertScorer:
    """Greedy-matching BERTScore with a local encoder.

    Args:
        model_path: local ``transformers`` model folder (encoder + tokenizer).
        num_layers: which hidden state to use; default: 17 for a 24-layer RoBERTa (``bert_score``'s
            roberta-large setting), else the last layer.
        device: torch device string.
        batch_size: sentences per forward pass.
    """

    def __init__(
        self, model_path: str | Path, num_layers: int | None = None, device: str = "cpu", batch_size: int = 64
    ) -> None:
        path = Path(model_path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{path} is not a transformers model folder (no config.json); BERTScore models "
                "are never downloaded, pass a local encoder such as roberta-large"
            )
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        if getattr(tokenizer, "add_prefix_space", None) is False:  # byte-level BPE: bert_score adds the space
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True, add_prefix_space=True)
        self.tokenizer = tokenizer
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True).eval().to(device)
        config = self.model.config
        total = int(config.num_hidden_layers)
        if num_layers is None:
            num_layers = ROBERTA_LARGE_LAYER if config.model_type == "roberta" and total == 24 else total
        if not 0 <= num_layers <= total:
            raise ValueError(f"num_layers must be in [0, {total}] for {path}, got {num_layers}")
        self.num_layers = num_layers
        self.device = device
        self.batch_size = batch_size
        self.path = path
        limit = int(getattr(tokenizer, "model_max_length", 512) or 512)
        self.max_length = min(limit if limit < 100_000 else 512, int(getattr(config, "max_position_embeddings", 512)))
        self.zero_weight_ids = {i for i in (tokenizer.cls_token_id, tokenizer.sep_token_id) if i is not None}

    @property
    def description(self) -> str:
        return f"BERTScore F1 with {self.path}, layer {self.num_layers}, no idf, no rescaling"

    def _ids(self, sentence: str) -> list[int]:
        # an empty sentence encodes to just the special tokens ([CLS] [SEP]), as in bert_score
        enc = self.tokenizer(sentence.strip(), add_special_tokens=True, truncation=True, max_length=self.max_length)
        return list(enc["input_ids"])

    def embed(self, sentences: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per sentence: unit-norm token embeddings ``(T, D)`` and token weights ``(T,)``."""
        import torch

        ids = [self._ids(s) for s in sentences]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths share a batch
        out: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros((0, 0)), np.zeros(0))] * len(ids)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        with torch.inference_mode():
            for k in range(0, len(order), self.batch_size):
                batch = order[k : k + self.batch_size]
                width = max(len(ids[i]) for i in batch)
                input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, i in enumerate(batch):
                    input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
                    mask[row, : len(ids[i])] = 1
                hidden = self.model(
                    input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device), output_hidden_states=True
                ).hidden_states[self.num_layers]  # (B, T, D)
                hidden = torch.nn.functional.normalize(hidden.float(), dim=-1).cpu().numpy()
                for row, i in enumerate(batch):
                    weights = np.array([0.0 if t in self.zero_weight_ids else 1.0 for t in ids[i]])
                    out[i] = (hidden[row, : len(ids[i])], weights)
        return out

    def score(self, candidates: Sequence[str], references: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-pair precision, recall and F1 (0-1 scale).

        Shapes:
            each returned array is ``(N,)``.
        """
        if len(candidates) != len(references):
            raise ValueError(f"{len(candidates)} candidates but {len(references)} references")
        unique = sorted(set(candidates) | set(references))
        table = dict(zip(unique, self.embed(unique), strict=True))
        p, r, f = (np.zeros(len(candidates)) for _ in range(3))
        for n, (cand, ref) in enumerate(zip(candidates, references, strict=True)):
            (y, wy), (x, wx) = table[cand], table[ref]
            if wy.sum() == 0 or wx.sum() == 0:
                continue  # an empty sentence: P = R = F1 = 0, as bert_score
            sim = y @ x.T  # (candidate tokens, reference tokens)
            p[n] = float(wy @ sim.max(axis=1) / wy.sum())
            r[n] = float(wx @ sim.max(axis=0) / wx.sum())
            f[n] = 2 * p[n] * r[n] / (p[n] + r[n]) if p[n] + r[n] != 0 else 0.0
        return p, r, f
