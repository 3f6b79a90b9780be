"""The coco-caption metrics of HiREST step captioning: PTB tokens, Bleu_1..Bleu_4, METEOR, ROUGE_L, CIDEr, SPICE.

HiREST scores captions with ``language_evaluation.CocoEvaluator`` (a copy of coco-caption). This module runs
the same scorers from the PyPI ``pycocoevalcap`` package (``pip install quag[eval]``; Java must be on ``PATH``),
imported only when a function here is called:

* tokenisation: Stanford PTBTokenizer (CoreNLP 3.4.1 jar shipped with pycocoevalcap), ``-preserveLines
  -lowerCase``, then coco-caption's punctuation tokens are removed;
* ``Bleu_n = BP * exp(sum_{k<=n} log(p_k) / n)``, corpus level, brevity penalty from the closest reference length;
* ``METEOR``: METEOR 1.5 (``-l en -norm``), corpus-level score from summed sufficient statistics, one Java
  process per :class:`MeteorScorer` (reused for every subset, closed explicitly);
* ``ROUGE_L``: mean over items of the LCS F-measure with ``beta = 1.2``;
* ``CIDEr``: coco-caption's CIDEr-D (n = 1..4, ``sigma = 6``, length penalty, clipped counts,
  IDF from the references of the scored set, x10);
* ``SPICE``: SPICE 1.0, mean over items of the scene-graph tuple F-score. It needs Stanford CoreNLP 3.6.0
  (``stanford-corenlp-3.6.0.jar`` and ``-models.jar``), which is never downloaded: point ``corenlp_dir`` or
  ``$QUAG_CORENLP_DIR`` at a folder holding both, or SPICE is reported as not computed.

All scores here are on the 0-1 scale; the evaluator multiplies by 100 as the official code does.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

COCO_METRICS: tuple[str, ...] = ("Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE")
"""The coco-caption scorers in their official order, each named by its headline output key as pycocoevalcap spells
it; ``Bleu_4`` is the BLEU scorer, which also reports ``Bleu_1``..``Bleu_3``."""

METRIC_KEYS: dict[str, tuple[str, ...]] = {
    "Bleu_4": ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"),
    "METEOR": ("METEOR",),
    "ROUGE_L": ("ROUGE_L",),
    "CIDEr": ("CIDEr",),
    "SPICE": ("SPICE",),
}
"""Output keys of each scorer, as the official results dict spells them."""

SCORER_OF: dict[str, str] = {
    "bleu": "Bleu_4",  # the scorer's own name (HiREST's ``coco_types``)
    **{key.lower(): name for name, keys in METRIC_KEYS.items() for key in keys},
}
"""Lower-cased metric name -> the :data:`COCO_METRICS` scorer that computes it."""

PUNCTUATIONS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)
"""Tokens coco-caption's PTBTokenizer wrapper drops after tokenisation."""

CORENLP_JARS: tuple[str, str] = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")
CORENLP_ENV = "QUAG_CORENLP_DIR"
_LINE_BREAKS = str.maketrans({c: " " for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"})


def pycocoevalcap_dir() -> Path:
    """Folder of the installed ``pycocoevalcap`` package (it ships the Java jars)."""
    try:
        import pycocoevalcap
    except ImportError as e:
        raise RuntimeError("caption metrics need pycocoevalcap: pip install 'quag[eval]' (and Java 8+)") from e
    return Path(next(iter(pycocoevalcap.__path__)))


def java_problem(java: str = "java") -> str | None:
    """``None`` when ``java -version`` runs, else why not (used to report metrics as not computed)."""
    if shutil.which(java) is None:
        return f"Java not found ({java!r} is not on PATH); install a JRE (8 or later)"
    try:
        subprocess.run([java, "-version"], capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        return f"`{java} -version` failed: {e}"
    return None


def ptb_tokenize(sentences: Sequence[str], java: str = "java") -> list[str]:
    """Stanford PTB tokens of each sentence, lowercased, punctuation tokens removed, joined by spaces.

    Same command and post-processing as coco-caption's ``PTBTokenizer.tokenize``, in one Java call. Line
    breaks inside a sentence become spaces; empty sentences stay empty.
    """
    if not sentences:
        return []
    jar = pycocoevalcap_dir() / "tokenizer" / "stanford-corenlp-3.4.1.jar"
    lines = [s.translate(_LINE_BREAKS) for s in sentences]
    with tempfile.TemporaryDirectory(prefix="quag_ptb_") as tmp:
        path = Path(tmp) / "sentences.txt"
        path.write_text("\n".join(lines), encoding="utf-8")
        cmd = [java, "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase"]
        proc = subprocess.run([*cmd, str(path)], capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"PTBTokenizer failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-2000:]}")
    out = proc.stdout.decode("utf-8").split("\n")
    # Trailing empty sentences produce no output line; a trailing newline produces one extra empty line.
    while len(out) > len(lines) and out[-1].strip() == "":
        out.pop()
    while len(out) < len(lines) and lines[len(out)].strip() == "":
        out.append("")
    if len(out) != len(lines):
        raise RuntimeError(f"PTBTokenizer returned {len(out)} lines for {len(lines)} sentences")
    return [" ".join(w for w in line.rstrip().split(" ") if w not in PUNCTUATIONS) for line in out]


class MeteorScorer:
    """One METEOR 1.5 Java process (pycocoevalcap's jar and paraphrase table), started on first use.

    The protocol is pycocoevalcap's ``Meteor.compute_score``: one ``SCORE ||| ref ||| hyp`` line per item
    returns its statistics, then ``EVAL ||| stats_1 ||| ...`` returns one score per item and the corpus score.
    Loading the paraphrase table takes seconds, so evaluate every subset with the same scorer and close it
    (or use it as a context manager).

    Args:
        java: Java executable.
        memory: the JVM heap (``-Xmx``); the official wrapper uses 2G.
    """

    def __init__(self, java: str = "java", memory: str = "2G") -> None:
        self.java = java
        self.memory = memory
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            folder = pycocoevalcap_dir() / "meteor"
            for need in ("meteor-1.5.jar", "data/paraphrase-en.gz"):
                if not (folder / need).is_file():
                    raise RuntimeError(f"{folder / need} is missing: reinstall pycocoevalcap")
            self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 -- lives as long as the process; closed in close()
            cmd = [self.java, "-jar", f"-Xmx{self.memory}", "meteor-1.5.jar", "-", "-", "-stdio", "-l", "en", "-norm"]
            self._proc = subprocess.Popen(
                cmd, cwd=folder, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr
            )
        return self._proc

    def start(self) -> None:
        """Start the Java process now; it loads its paraphrase table in the background until the first score."""
        self._start()

    def _send(self, line: str) -> None:
        proc = self._start()
        assert proc.stdin is not None
        try:
            proc.stdin.write(f"{line}\n".encode())
            proc.stdin.flush()
        except BrokenPipeError as e:
            raise RuntimeError(f"METEOR process died: {self._stderr_tail()}") from e

    def _read(self) -> str:
        proc = self._start()
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"METEOR process ended unexpectedly: {self._stderr_tail()}")
        return line.decode().strip()

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-2000:]

    def score(self, candidates: Sequence[str], references: Sequence[str]) -> tuple[float, list[float]]:
        """Corpus METEOR and per-item scores of tokenised candidates against one tokenised reference each."""
        if len(candidates) != len(references):
            raise ValueError(f"{len(candidates)} candidates but {len(references)} references")
        if not candidates:
            return 0.0, []
        with self._lock:
            stats = []
            for hyp, ref in zip(candidates, references, strict=True):
                hyp = hyp.replace("|||", "").replace("  ", " ")
                self._send(" ||| ".join(("SCORE", ref, hyp)))
                stats.append(self._read())
            self._send("EVAL ||| " + " ||| ".join(stats))
            items = [float(self._read()) for _ in candidates]
            return float(self._read()), items

    def close(self) -> None:
        """End the Java process (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> MeteorScorer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def _as_coco(candidates: Sequence[str], references: Sequence[str]) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} references")
    return {i: [r] for i, r in enumerate(references)}, {i: [c] for i, c in enumerate(candidates)}


def bleu(candidates: Sequence[str], references: Sequence[str]) -> list[float]:
    """Corpus Bleu_1..Bleu_4 (pycocoevalcap ``Bleu(4)``, option ``closest``) of tokenised sentences."""
    from pycocoevalcap.bleu.bleu import Bleu

    gts, res = _as_coco(candidates, references)
    score, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return [float(s) for s in score]


def rouge_l(candidates: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE_L F-measure (``beta = 1.2``; pycocoevalcap ``Rouge``) of tokenised sentences."""
    from pycocoevalcap.rouge.rouge import Rouge

    gts, res = _as_coco(candidates, references)
    score, _ = Rouge().compute_score(gts, res)
    return float(score)


def cider(candidates: Sequence[str], references: Sequence[str]) -> float:
    """CIDEr-D (pycocoevalcap ``Cider``) of tokenised sentences; IDF comes from these references only."""
    from pycocoevalcap.cider.cider import Cider

    gts, res = _as_coco(candidates, references)
    score, _ = Cider().compute_score(gts, res)
    return float(score)


def find_corenlp(corenlp_dir: str | Path | None = None) -> tuple[list[Path] | None, str]:
    """Locate the two Stanford CoreNLP 3.6.0 jars SPICE needs, without downloading anything.

    Looks in ``corenlp_dir``, else ``$QUAG_CORENLP_DIR``, else pycocoevalcap's ``spice/lib`` (where its own
    first run would have put them).

    Returns:
        ``(jars, "")`` when found, else ``(None, reason)``.
    """
    if corenlp_dir is not None:
        folder, name = Path(corenlp_dir), "the configured CoreNLP folder"
    elif os.environ.get(CORENLP_ENV):
        folder, name = Path(os.environ[CORENLP_ENV]), f"${CORENLP_ENV}"
    else:
        folder, name = pycocoevalcap_dir() / "spice" / "lib", "pycocoevalcap's spice/lib"
    jars = [folder / j for j in CORENLP_JARS]
    if all(j.is_file() for j in jars):
        return jars, ""
    missing = ", ".join(j.name for j in jars if not j.is_file())
    reason = (
        f"Stanford CoreNLP 3.6.0 not found in {name} ({folder}): missing {missing}. SPICE needs both jars and "
        f"they are never downloaded; set --spice-corenlp DIR or ${CORENLP_ENV} to a folder holding them"
    )
    return None, reason


def spice(
    candidates: Sequence[str],
    references: Sequence[str],
    corenlp_jars: Sequence[Path],
    java: str = "java",
    memory: str = "8G",
) -> list[float]:
    """Per-item SPICE F-scores (``scores.All.f``; NaN where SPICE gives none) of tokenised sentences.

    Runs pycocoevalcap's ``spice-1.0.jar`` with its ``lib/`` and the given CoreNLP jars on the class path, with
    the official ``-subset -silent`` flags. The parse cache is off: it changes no score, and its LMDB/FST
    back-end does not run on recent JVMs.
    """
    if not candidates:
        return []
    folder = pycocoevalcap_dir() / "spice"
    classpath = [folder / "spice-1.0.jar", *sorted((folder / "lib").glob("*.jar")), *corenlp_jars]
    data = [
        {"image_id": i, "test": c, "refs": [r]} for i, (c, r) in enumerate(zip(candidates, references, strict=True))
    ]
    with tempfile.TemporaryDirectory(prefix="quag_spice_") as tmp:
        in_file, out_file = Path(tmp) / "in.json", Path(tmp) / "out.json"
        in_file.write_text(json.dumps(data), encoding="utf-8")
        cmd = [java, f"-Xmx{memory}", "-cp", os.pathsep.join(map(str, classpath)), "edu.anu.spice.SpiceScorer"]
        proc = subprocess.run([*cmd, str(in_file), "-out", str(out_file), "-subset", "-silent"], capture_output=True)
        if proc.returncode != 0 or not out_file.is_file():
            raise RuntimeError(f"SPICE failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-2000:]}")
        results = json.loads(out_file.read_text(encoding="utf-8"))
    by_id = {item["image_id"]: item["scores"]["All"]["f"] for item in results}
    out = []
    for i in range(len(candidates)):
        try:
            out.append(float(by_id[i]))
        except (KeyError, TypeError, ValueError):
            out.append(float("nan"))
    return out
