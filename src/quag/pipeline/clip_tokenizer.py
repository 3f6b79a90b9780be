"""OpenAI-CLIP byte-level BPE tokenizer (``clip.tokenize``), the query tokenizer of HiREST/QUAG.

The algorithm follows OpenAI CLIP's ``simple_tokenizer``: clean the text (``ftfy.fix_text`` when ftfy is
installed, HTML-unescape twice, collapse whitespace), lower-case it, split it with CLIP's pre-tokenisation pattern,
map UTF-8 bytes to printable characters, and apply the merges of ``bpe_simple_vocab_16e6.txt.gz`` greedily by rank.
Ids: 256 byte symbols, their 256 word-final (``</w>``) forms, 48,894 merges, ``<|startoftext|>`` = 49406 and
``<|endoftext|>`` = 49407. Rows are ``[SOT] tokens [EOT]`` zero-padded to 77.

The merges file is not bundled (it is OpenAI's, MIT-licensed); it is read from an installed package that ships
it (``openai-clip`` — part of ``pip install quag[extract]`` — or ``open_clip_torch``), or from a path you give.
"""

from __future__ import annotations

import gzip
import html
import logging
from collections.abc import Callable
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
# (distribution, path of the merges file inside it)
BPE_PROVIDERS = (("openai-clip", f"clip/{BPE_FILE}"), ("open_clip_torch", f"open_clip/{BPE_FILE}"))
SOT, EOT = "<|startoftext|>", "<|endoftext|>"
N_MERGES = 49152 - 256 - 2
_PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def default_bpe_path() -> Path:
    """The CLIP merges file of an installed package; raises with the remedy when none ships it."""
    for dist, rel in BPE_PROVIDERS:
        try:
            candidate = Path(str(metadata.distribution(dist).locate_file(rel)))
        except metadata.PackageNotFoundError:
            continue
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"the CLIP BPE vocabulary ({BPE_FILE}) was not found: install it with `pip install openai-clip` "
        "(part of quag[extract]; only the vocabulary file is used) or pass its path (--bpe PATH)"
    )


@lru_cache
def bytes_to_unicode() -> dict[int, str]:
    """Reversible map from the 256 byte values to printable characters (CLIP/GPT-2's byte encoder)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    # Order by the reference's construction: printable bytes first, then the remaining ones.
    return {b: mapping[b] for b in printable + [b for b in range(256) if b not in printable]}


class ClipTokenizer:
    """``tokenizer(texts) -> (N, context_length)`` int64 token ids, as ``clip.tokenize``.

    Args:
        bpe_path: the ``bpe_simple_vocab_16e6.txt.gz`` merges file; default: :func:`default_bpe_path`.
    """

    def __init__(self, bpe_path: str | Path | None = None) -> None:
        try:
            import regex
        except ImportError as e:
            raise RuntimeError("the CLIP tokenizer needs the `regex` package: pip install quag[extract]") from e
        path = Path(bpe_path) if bpe_path is not None else default_bpe_path()
        if not path.is_file():
            raise FileNotFoundError(f"CLIP BPE vocabulary {path} not found")
        with gzip.open(path, "rt", encoding="utf-8") as f:
            lines = f.read().split("\n")
        # Line 0 is a version header; the vocabulary uses the first N_MERGES merges.
        merges = [tuple(line.split()) for line in lines[1 : N_MERGES + 1]]
        if len(merges) != N_MERGES or any(len(m) != 2 for m in merges):
            raise ValueError(f"{path}: expected {N_MERGES} BPE merges of two symbols each; is it {BPE_FILE}?")
        byte_symbols = list(bytes_to_unicode().values())
        vocab = byte_symbols + [s + "</w>" for s in byte_symbols] + ["".join(m) for m in merges] + [SOT, EOT]
        self.encoder = {s: i for i, s in enumerate(vocab)}
        self.decoder = {i: s for s, i in self.encoder.items()}
        self.bpe_ranks = {m: i for i, m in enumerate(merges)}
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        self.sot_id, self.eot_id = self.encoder[SOT], self.encoder[EOT]
        self._pattern = regex.compile(_PATTERN, regex.IGNORECASE)
        self._regex = regex
        self._cache: dict[str, str] = {SOT: SOT, EOT: EOT}
        self._fix_text: Callable[[str], str] | None
        try:
            import ftfy

            self._fix_text = ftfy.fix_text
        except ImportError:
            logger.warning(
                "ftfy is not installed: text is not repaired before CLIP tokenisation (the reference "
                "applies ftfy.fix_text; plain ASCII queries are unaffected)"
            )
            self._fix_text = None

    def _clean(self, text: str) -> str:
        if self._fix_text is not None:
            text = self._fix_text(text)
        text = html.unescape(html.unescape(text)).strip()
        return self._regex.sub(r"\s+", " ", text).strip().lower()

    def _bpe(self, token: str) -> str:
        """Space-separated BPE symbols of one pre-token (already byte-encoded)."""
        if token in self._cache:
            return self._cache[token]
        word = list(token[:-1]) + [token[-1] + "</w>"]
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if best not in self.bpe_ranks:
                break
            merged: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        out = " ".join(word)
        self._cache[token] = out
        return out

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without the start/end tokens."""
        ids: list[int] = []
        for token in self._pattern.findall(self._clean(text)):
            encoded = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[s] for s in self._bpe(encoded).split(" "))
        return ids

    def decode(self, ids: list[int]) -> str:
        text = "".join(self.decoder[i] for i in ids)
        return bytearray(self.byte_decoder[c] for c in text).decode("utf-8", errors="replace").replace("</w>", " ")

    def __call__(self, texts: str | list[str], context_length: int = 77, truncate: bool = True) -> torch.Tensor:
        """(N, context_length) int64 ids: ``[SOT] ids [EOT]`` then zeros.

        Args:
            texts: one string or a list.
            context_length: row length (77 for CLIP).
            truncate: cut over-long rows (keeping EOT last) instead of raising, with a warning.
        """
        if isinstance(texts, str):
            texts = [texts]
        out = torch.zeros(len(texts), context_length, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = [self.sot_id, *self.encode(text), self.eot_id]
            if len(ids) > context_length:
                if not truncate:
                    raise ValueError(f"text {text[:60]!r}... has {len(ids)} tokens, more than {context_length}")
                logger.warning("query truncated to %d CLIP tokens: %r", context_length, text[:80])
                ids = ids[:context_length]
                ids[-1] = self.eot_id
            out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out
