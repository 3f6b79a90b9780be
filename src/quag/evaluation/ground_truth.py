"""Ground truth for evaluation: split files for retrieval, formatted step files for segmentation and captioning.

* video_retrieval, moment_retrieval: a split file ``splits/all_data_<split>.json`` (query -> video ->
  annotation), read with :mod:`quag.data.annotations`.
* moment_segmentation, step_captioning: the formatted step file (``val_testing/formated_moment_evaluation_gt.json``
  [sic] for val, ``evaluation/formatted_moment_evaluation_gt.json`` for test), ``{video: {"captions": [{start, end,
  sentence}], "bounds": [[s, e], ...]}}``. A split file is accepted too and converted: every ``relevant and
  clip`` video with at least one step gives captions = its stripped step headings and bounds = its step spans,
  in step order. On val this reproduces the formatted file exactly (78 videos, same spans), except that the
  formatted file keeps trailing spaces in 28 captions, which no metric sees (PTB tokenisation and the
  BERTScore/NLI tokenizers ignore them).

Categories come from ``evaluation/categories.json`` (prompt -> category for VR/MR, video -> category for MS/SC).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quag.data.annotations import AnnotationError, VideoAnnotation, parse_video, read_json


class GroundTruthError(ValueError):
    """A malformed ground-truth file; the message names the video and the field."""


@dataclass(frozen=True)
class StepGroundTruth:
    """The reference steps of one video (seconds)."""

    video: str
    sentences: tuple[str, ...]
    """Captions in step order (as written in the file; scorers lowercase them)."""
    segments: tuple[tuple[float, float], ...]
    """``bounds``: the step spans moment segmentation is scored against."""
    caption_spans: tuple[tuple[float, float] | None, ...]
    """``start``/``end`` of each caption (``None`` where the file has none)."""

    @property
    def span(self) -> tuple[float, float]:
        """``(first step start, last step end)``: the moment the steps tile."""
        return self.segments[0][0], self.segments[-1][1]


def is_formatted_step_file(obj: Any) -> bool:
    """True for a formatted step file (``video -> {captions, bounds}``), False for a split file."""
    if not isinstance(obj, dict) or not obj:
        return False
    first = next(iter(obj.values()))
    return isinstance(first, dict) and ("captions" in first or "bounds" in first) and "v_duration" not in first


def split_videos(obj: Any, source: str = "<ground truth>") -> list[VideoAnnotation]:
    """Split-file records from a path, the parsed JSON object, or a list of records."""
    if isinstance(obj, (str, Path)):
        source, obj = str(obj), read_json(obj)
    if isinstance(obj, list) and all(isinstance(v, VideoAnnotation) for v in obj):
        return list(obj)
    if not isinstance(obj, dict) or is_formatted_step_file(obj):
        raise GroundTruthError(
            f"{source}: retrieval ground truth is a split file (query -> video -> annotation), "
            "e.g. splits/all_data_val.json"
        )
    out = []
    for query, videos in obj.items():
        if not isinstance(videos, dict):
            raise GroundTruthError(f"{source}: query {query!r}: expected a mapping of video -> annotation")
        for video, entry in videos.items():
            try:
                out.append(parse_video(query, video, entry, f"{source}: query {query!r} video {video!r}"))
            except AnnotationError as e:
                raise GroundTruthError(str(e)) from e
    return out


def steps_from_split(videos: Sequence[VideoAnnotation]) -> dict[str, StepGroundTruth]:
    """Step ground truth of every ``relevant and clip`` video with steps (the official MS/SC evaluation set)."""
    out = {}
    for v in videos:
        if v.relevant and v.clip and v.steps:
            spans = tuple((s.start, s.end) for s in v.steps)
            out[v.video] = StepGroundTruth(v.video, tuple(s.caption for s in v.steps), spans, spans)
    return out


def _finite(value: Any, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise GroundTruthError(f"{where}: field {name!r} must be a finite number of seconds, got {value!r}")
    return float(value)


def _parse_formatted(video: str, entry: Any, where: str) -> StepGroundTruth:
    if not isinstance(entry, dict):
        raise GroundTruthError(f"{where}: expected an object with 'captions' and 'bounds'")
    captions = entry.get("captions", [])
    if not isinstance(captions, list):
        raise GroundTruthError(f"{where}: field 'captions' must be a list")
    sentences, spans = [], []
    for i, c in enumerate(captions):
        if not isinstance(c, dict) or not isinstance(c.get("sentence"), str):
            raise GroundTruthError(f"{where}: field 'captions[{i}].sentence' must be a string")
        has_span = c.get("start") is not None and c.get("end") is not None
        spans.append(
            (_finite(c["start"], where, f"captions[{i}].start"), _finite(c["end"], where, f"captions[{i}].end"))
            if has_span
            else None
        )
        sentences.append(c["sentence"])
    if "bounds" in entry:
        bounds = entry["bounds"]
        if not isinstance(bounds, list) or not all(isinstance(b, (list, tuple)) and len(b) == 2 for b in bounds):
            raise GroundTruthError(f"{where}: field 'bounds' must be a list of [start, end]")
        segments = [
            (_finite(b[0], where, f"bounds[{i}]"), _finite(b[1], where, f"bounds[{i}]")) for i, b in enumerate(bounds)
        ]
    elif spans and all(s is not None for s in spans):
        segments = [s for s in spans if s is not None]
    else:
        raise GroundTruthError(f"{where}: missing field 'bounds' (and the captions carry no start/end)")
    if not segments:
        raise GroundTruthError(f"{where}: field 'bounds' is empty; every evaluated video needs at least one step")
    return StepGroundTruth(video, tuple(sentences), tuple(segments), tuple(spans))


def step_ground_truth(obj: Any, source: str = "<ground truth>") -> dict[str, StepGroundTruth]:
    """Step ground truth from a formatted step file or a split file (path, parsed JSON, or records).

    Returns:
        ``{video: StepGroundTruth}`` in file order.
    """
    if isinstance(obj, (str, Path)):
        source, obj = str(obj), read_json(obj)
    if isinstance(obj, dict) and obj and all(isinstance(v, StepGroundTruth) for v in obj.values()):
        return dict(obj)
    if is_formatted_step_file(obj):
        return {video: _parse_formatted(video, entry, f"{source}: video {video!r}") for video, entry in obj.items()}
    return steps_from_split(split_videos(obj, source))


@dataclass(frozen=True)
class Categories:
    """HiREST categories: prompts (VR, MR) and videos (MS, SC) -> one of 14 category names."""

    prompt_to_cat: dict[str, str]
    video_to_cat: dict[str, str]

    UNKNOWN = "(no category)"
    """Group of items that categories.json does not list (the official code raises ``KeyError``)."""

    @classmethod
    def from_file(cls, path: str | Path) -> Categories:
        """Read a ``categories.json`` (``{"prompt_to_cat": {...}, "video_to_cat": {...}}``)."""
        data = read_json(path)
        for key in ("prompt_to_cat", "video_to_cat"):
            if not isinstance(data, dict) or not isinstance(data.get(key), dict):
                raise GroundTruthError(f"{path}: missing mapping {key!r}")
        return cls(dict(data["prompt_to_cat"]), dict(data["video_to_cat"]))

    def of_prompt(self, query: str) -> str:
        return self.prompt_to_cat.get(query, self.UNKNOWN)

    def of_video(self, video: str) -> str:
        return self.video_to_cat.get(video, self.UNKNOWN)


def find_categories_file(gt_path: str | Path) -> Path | None:
    """``evaluation/categories.json`` of the dataset root that holds a ground-truth file, if any.

    Works for ``<root>/splits/*.json``, ``<root>/val_testing/*.json`` and ``<root>/evaluation/*.json``.
    """
    folder = Path(gt_path).resolve().parent
    for candidate in (folder / "categories.json", folder.parent / "evaluation" / "categories.json"):
        if candidate.is_file():
            return candidate
    return None
