"""SRT transcripts (Whisper's output format) and the per-second spreading of cue embeddings.

A file is a sequence of blocks separated by blank lines::

    1
    00:00:01,000 --> 00:00:04,500
    text (one or more lines)

The official loader reads cue times with ``timedelta.seconds`` (whole seconds, fractions dropped) and fills
rows ``floor(start) .. floor(end) - 1`` of a zero (T, D) matrix with the cue's embedding; later cues overwrite
earlier ones, a cue inside one second gets no row, silence stays zero (docs/data.md).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_TIME = re.compile(r"^\s*(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})\s*$")


class SrtError(ValueError):
    """A malformed SRT file; the message names the file, the cue and the field."""


@dataclass(frozen=True)
class Cue:
    index: int
    start: float
    end: float
    text: str


def _parse_time(text: str, where: str) -> float:
    m = _TIME.match(text)
    if not m:
        raise SrtError(f"{where}: timestamp {text.strip()!r} is not HH:MM:SS,mmm")
    h, mi, s, ms = m.groups()
    if int(mi) >= 60 or int(s) >= 60:
        raise SrtError(f"{where}: timestamp {text.strip()!r} has minutes/seconds >= 60")
    return (((int(h) * 60 + int(mi)) * 60 + int(s)) * 1000 + int(ms.ljust(3, "0"))) / 1000.0


def parse_srt(text: str, source: str = "<srt>") -> list[Cue]:
    """Parse SRT text into cues in file order. Empty text (no speech) gives ``[]``."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    cues = []
    blocks = [b for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    for k, block in enumerate(blocks):
        lines = block.split("\n")
        where = f"{source}: cue {k + 1}"
        if len(lines) < 2:
            raise SrtError(f"{where}: expected an index line and a 'start --> end' line, got {block!r}")
        try:
            index = int(lines[0].strip())
        except ValueError:
            raise SrtError(f"{where}: index line {lines[0]!r} is not an integer") from None
        if "-->" not in lines[1]:
            raise SrtError(f"{where}: time line {lines[1]!r} lacks '-->'")
        a, b = lines[1].split("-->", 1)
        start, end = _parse_time(a, where), _parse_time(b.split()[0] if b.split() else b, where)
        if end < start:
            raise SrtError(f"{where}: cue ends ({end:.3f}s) before it starts ({start:.3f}s)")
        cues.append(Cue(index=index, start=start, end=end, text="\n".join(lines[2:]).strip()))
    return cues


def read_srt(path: str | Path) -> list[Cue]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise SrtError(f"{path}: not UTF-8 text ({e})") from e
    return parse_srt(text, str(path))


def format_time(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def format_srt(cues: list[Cue]) -> str:
    """Cues -> SRT text (indices renumbered from 1)."""
    blocks = [f"{i}\n{format_time(c.start)} --> {format_time(c.end)}\n{c.text}\n" for i, c in enumerate(cues, 1)]
    return "\n".join(blocks)


def spread_cues(cues: list[Cue], embeddings: np.ndarray, n_frames: int, mode: str = "reference") -> np.ndarray:
    """Per-second transcript features: (n_frames, D), zero where nobody speaks.

    Args:
        cues: the SRT cues, in file order (row i of ``embeddings`` belongs to cue i).
        embeddings: (n_cues, D) cue embeddings.
        n_frames: number of 1-fps frames of the video.
        mode: ``reference`` (the official features' rule: whole-second truncation, later cues overwrite,
            sub-second cues dropped) or ``overlap`` (each second takes the cue overlapping ``[t, t+1)`` the most;
            ties to the later cue).
    """
    if embeddings.ndim != 2 or embeddings.shape[0] != len(cues):
        raise ValueError(f"{len(cues)} cues need a ({len(cues)}, D) embedding matrix, got {tuple(embeddings.shape)}")
    out = np.zeros((n_frames, embeddings.shape[1]), dtype=np.float32)
    if mode == "reference":
        for i, c in enumerate(cues):
            s, e = int(math.floor(c.start)), int(math.floor(c.end))
            out[s:e] = embeddings[i]  # numpy clips slices past the end, as the reference
        return out
    if mode != "overlap":
        raise ValueError(f"unknown ASR alignment {mode!r}; expected reference or overlap")
    best = np.zeros(n_frames)
    for i, c in enumerate(cues):
        lo, hi = int(math.floor(c.start)), min(int(math.ceil(c.end)), n_frames)
        for t in range(max(lo, 0), hi):
            ov = min(c.end, t + 1) - max(c.start, t)
            if ov > 0 and ov >= best[t]:
                best[t] = ov
                out[t] = embeddings[i]
    return out
