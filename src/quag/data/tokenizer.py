"""bert-base-uncased WordPiece tokenizer (pure Python) and the CLIP4Caption caption-target format.

The vocabulary (30,522 entries, Apache-2.0, from Google's BERT release) ships in ``quag/assets``; it is the
``vocab.txt`` of all-MiniLM-L6-v2 as well. The algorithm is BERT's ``BasicTokenizer`` (clean, split CJK
characters, lowercase, strip accents, split punctuation) followed by greedy longest-match-first WordPiece, as
the reference's bundled ``pytorch-pretrained-bert`` tokenizer does.

Caption targets (``clip4cap_get_text``, max 48 tokens)::

    input  = [CLS] w_1 ... w_n  [PAD]...     (n <= 47)
    output = w_1 ... w_n [SEP]  [PAD]...
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np

PAD_ID, UNK_ID, CLS_ID, SEP_ID = 0, 100, 101, 102


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch) in ("Cc", "Cf")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


class WordPieceTokenizer:
    """Lower-casing BERT tokenizer over a ``vocab.txt`` (one token per line, id = line number)."""

    def __init__(self, vocab_path: str | Path | None = None, max_chars_per_word: int = 100) -> None:
        if vocab_path is None:
            text = resources.files("quag").joinpath("assets/bert-base-uncased-vocab.txt").read_text(encoding="utf-8")
        else:
            path = Path(vocab_path)
            if not path.is_file():
                raise FileNotFoundError(f"vocabulary file {path} not found (expected a BERT vocab.txt)")
            text = path.read_text(encoding="utf-8")
        self.id_to_token = [line.rstrip("\n") for line in text.splitlines()]
        self.vocab = {t: i for i, t in enumerate(self.id_to_token)}
        self.max_chars_per_word = max_chars_per_word

    def __len__(self) -> int:
        return len(self.id_to_token)

    def _basic(self, text: str) -> list[str]:
        chars = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or _is_control(ch):
                continue
            if _is_cjk(cp):
                chars.append(f" {ch} ")
            else:
                chars.append(" " if _is_whitespace(ch) else ch)
        out: list[str] = []
        for word in "".join(chars).split():
            word = unicodedata.normalize("NFD", word.lower())
            word = "".join(c for c in word if unicodedata.category(c) != "Mn")
            current = ""
            for ch in word:
                if _is_punctuation(ch):
                    if current:
                        out.append(current)
                        current = ""
                    out.append(ch)
                else:
                    current += ch
            if current:
                out.append(current)
        return out

    def _wordpiece(self, word: str) -> list[str]:
        if len(word) > self.max_chars_per_word:
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(word):
            end, cur = len(word), None
            while start < end:
                sub = word[start:end] if start == 0 else "##" + word[start:end]
                if sub in self.vocab:
                    cur = sub
                    break
                end -= 1
            if cur is None:
                return ["[UNK]"]
            pieces.append(cur)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[str]:
        return [p for w in self._basic(text) for p in self._wordpiece(w)]

    def encode(self, text: str) -> list[int]:
        return [self.vocab[t] for t in self.tokenize(text)]

    def decode(self, ids: list[int] | np.ndarray, style: Literal["clean", "reference"] = "clean") -> str:
        """Ids -> caption text, cut at the first [SEP] or [PAD].

        Args:
            ids: token ids as generated (the start token is not part of them).
            style: ``clean`` drops every [CLS] and removes every ``##`` continuation marker; ``reference`` prints
                like the authors' code (``docs/reference.md``): a [CLS] inside the caption stays as ``[CLS]``,
                ``" ##"`` is merged, and ``#`` characters are stripped from both ends (a lone ``#`` token at
                either end disappears).
        """
        words = []
        for i in (int(x) for x in ids):
            if i in (SEP_ID, PAD_ID):
                break
            if i == CLS_ID and style == "clean":
                continue
            words.append(self.id_to_token[i])
        text = " ".join(words).replace(" ##", "")
        if style == "reference":
            return text.strip("#").strip()
        return text.replace("##", "").strip()

    def caption_targets(self, caption: str, max_tokens: int = 48) -> tuple[np.ndarray, np.ndarray]:
        """CLIP4Caption decoder input and output ids, each (max_tokens,) int64, padded with 0."""
        ids = self.encode(caption)[: max_tokens - 1]
        inp = np.zeros(max_tokens, dtype=np.int64)
        out = np.zeros(max_tokens, dtype=np.int64)
        inp[0] = CLS_ID
        inp[1 : len(ids) + 1] = ids
        out[: len(ids)] = ids
        out[len(ids)] = SEP_ID
        return inp, out


@lru_cache(maxsize=4)
def get_tokenizer(vocab_path: str | None = None) -> WordPieceTokenizer:
    """Shared tokenizer instance (the vocabulary is read once per process)."""
    return WordPieceTokenizer(vocab_path)
