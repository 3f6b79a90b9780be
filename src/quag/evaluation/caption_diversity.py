"""How varied a captioner's step captions are: distinct captions per step, and a flag for a repeating decoder.

A small or undertrained caption decoder often falls back on one string (the most likely words of the training
captions) for nearly every step; n-gram metrics still give it some credit. These numbers make that visible:

- ``distinct_caption_ratio`` = (number of distinct captions) / (number of captions), captions compared after
  lowercasing and collapsing whitespace; 1.0 = every step has its own caption;
- ``most_common_share`` = the share of captions equal to the most frequent one; a captioner is flagged as
  *repetitive* when that share exceeds :data:`REPEAT_SHARE` (one caption for most steps).

An empty caption counts as a caption like any other (a decoder that emits nothing is repetitive too).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

REPEAT_SHARE = 0.5
"""A captioner whose most frequent caption covers more than this share of the steps is flagged as repetitive."""


def _norm(caption: str) -> str:
    return " ".join(caption.lower().split())


def distinct_caption_ratio(captions: Iterable[str]) -> float:
    """Distinct captions / captions (1.0 for no captions).

    Example: ``["add salt", "Add  salt", "stir"]`` -> 2 / 3.
    """
    items = [_norm(c) for c in captions]
    return len(set(items)) / len(items) if items else 1.0


@dataclass
class CaptionDiversity:
    """Diversity of a set of step captions (see the module docstring)."""

    captions: int
    """Number of step captions."""
    distinct: int
    """Number of distinct captions."""
    distinct_ratio: float
    """``distinct / captions`` (1.0 when there are none)."""
    most_common: str
    """The most frequent caption (normalised)."""
    most_common_share: float
    """Share of the captions equal to ``most_common``."""

    @property
    def repetitive(self) -> bool:
        """True when one caption covers more than :data:`REPEAT_SHARE` of the steps."""
        return self.most_common_share > REPEAT_SHARE

    def to_dict(self) -> dict[str, Any]:
        """The fields plus ``repetitive``, for JSON."""
        return {**asdict(self), "repetitive": self.repetitive}

    def summary(self) -> str:
        """One line, e.g. ``12 distinct captions for 40 steps (30%); "add the" on 55% of the steps: repetitive``."""
        text = f"{self.distinct} distinct captions for {self.captions} steps ({100 * self.distinct_ratio:.0f}%)"
        if self.repetitive:
            text += f'; "{self.most_common}" on {100 * self.most_common_share:.0f}% of the steps: the decoder repeats'
        return text


def caption_diversity(captions: Iterable[str]) -> CaptionDiversity:
    """:class:`CaptionDiversity` of a list of captions."""
    items = [_norm(c) for c in captions]
    if not items:
        return CaptionDiversity(0, 0, 1.0, "", 0.0)
    (top, count), *_ = Counter(items).most_common(1)
    return CaptionDiversity(len(items), len(set(items)), len(set(items)) / len(items), top, count / len(items))


def prediction_captions(predictions: Mapping[str, Any]) -> list[str]:
    """Every caption of an official step-captioning prediction object (``{video: {"captions": [...]}}``), in order.

    Raises:
        ValueError: a video's entry has no ``captions`` list of ``{"sentence": ...}`` items.
    """
    out: list[str] = []
    for video, entry in predictions.items():
        caps = entry.get("captions") if isinstance(entry, Mapping) else None
        if not isinstance(caps, list) or not all(isinstance(c, Mapping) and "sentence" in c for c in caps):
            raise ValueError(
                f"step-captioning predictions: video {video!r} needs a 'captions' list of {{'sentence': ...}} items"
            )
        out += [str(c["sentence"]) for c in caps]
    return out
