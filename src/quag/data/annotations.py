"""HiREST annotation JSON -> typed records -> per-task examples (official filters). No torch here.

Split files (``splits/all_data_<split>.json``) map query -> video key (``<id>.mp4``) -> annotation
(docs/data.md). Every task uses only ``relevant and clip`` pairs (1.5):

* moment retrieval: one example per pair; targets are the frames of ``bounds``;
* moment segmentation, training: one teacher-forced example per transition between consecutive unique step
  boundaries ``b_0 < ... < b_K`` (videos with <= 2 unique boundaries are dropped);
* moment segmentation, evaluation: one example per video with steps;
* step captioning: one example per step (caption = stripped heading).

Official counts (tested): train MR 865, MS 4,128 examples from 547 videos, SC 4,145; val MR 193, MS 78, SC 606.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quag.data.timestamps import num_frames, seconds_to_frame
from quag.io import json_error_text

SPLIT_FILE = "splits/all_data_{split}.json"
CATEGORIES_FILE = "evaluation/categories.json"
EVAL_GT_FILES = {
    "val": "val_testing/formated_moment_evaluation_gt.json",  # sic: the official name is misspelt
    "test": "evaluation/formatted_moment_evaluation_gt.json",
}


class AnnotationError(ValueError):
    """A malformed annotation file; the message names the file, the entry and the field."""


@dataclass(frozen=True)
class Step:
    index: int
    caption: str
    start: float
    end: float


@dataclass(frozen=True)
class VideoAnnotation:
    """One (query, video) pair of a split file. Times are in seconds."""

    query: str
    video: str
    """Video key as in the JSON, with its ``.mp4`` suffix."""
    relevant: bool
    clip: bool
    duration: float
    bounds: tuple[float, float]
    steps: tuple[Step, ...]

    @property
    def video_id(self) -> str:
        """The YouTube id, i.e. the key without ``.mp4`` (ASR file stem)."""
        return self.video[:-4] if self.video.endswith(".mp4") else self.video

    @property
    def num_frames(self) -> int:
        return num_frames(self.duration)

    @property
    def has_moment(self) -> bool:
        return self.relevant and self.clip


# ----------------------------------------------------------------------------------------------------------
# reading and validation


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise AnnotationError(f"{path}: not valid JSON ({json_error_text(e)})") from e


def _number(value: Any, where: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AnnotationError(f"{where}: field {field!r} must be a finite number, got {value!r}")
    return float(value)


def _interval(value: Any, where: str, field: str) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise AnnotationError(f"{where}: field {field!r} must be [start, end] in seconds, got {value!r}")
    return _number(value[0], where, field), _number(value[1], where, field)


def parse_video(query: str, video: str, entry: Any, where: str) -> VideoAnnotation:
    """Validate one split-file entry; ``where`` prefixes every error message."""
    if not isinstance(entry, dict):
        raise AnnotationError(f"{where}: expected an object with relevant/clip/v_duration/bounds/steps")
    for key in ("relevant", "clip", "v_duration", "bounds"):
        if key not in entry:
            raise AnnotationError(f"{where}: missing field {key!r}")
    for key in ("relevant", "clip"):
        if not isinstance(entry[key], bool):
            raise AnnotationError(f"{where}: field {key!r} must be true/false, got {entry[key]!r}")
    duration = _number(entry["v_duration"], where, "v_duration")
    if duration <= 0:
        raise AnnotationError(f"{where}: field 'v_duration' must be > 0 seconds, got {duration}")
    bounds = _interval(entry["bounds"], where, "bounds")
    raw_steps = entry.get("steps", [])
    if not isinstance(raw_steps, list):
        raise AnnotationError(f"{where}: field 'steps' must be a list, got {type(raw_steps).__name__}")
    steps = []
    for i, s in enumerate(raw_steps):
        sw = f"{where} steps[{i}]"
        if not isinstance(s, dict):
            raise AnnotationError(f"{sw}: expected an object with index/heading/absolute_bounds")
        for key in ("heading", "absolute_bounds"):
            if key not in s:
                raise AnnotationError(f"{sw}: missing field {key!r}")
        if not isinstance(s["heading"], str):
            raise AnnotationError(f"{sw}: field 'heading' must be a string, got {s['heading']!r}")
        start, end = _interval(s["absolute_bounds"], sw, "absolute_bounds")
        if end < start:
            raise AnnotationError(f"{sw}: field 'absolute_bounds' ends before it starts: {[start, end]}")
        index = s.get("index", i)
        if isinstance(index, bool) or not isinstance(index, int):
            raise AnnotationError(f"{sw}: field 'index' must be an integer, got {index!r}")
        steps.append(Step(index=index, caption=s["heading"].strip(), start=start, end=end))
    return VideoAnnotation(
        query=query,
        video=video,
        relevant=entry["relevant"],
        clip=entry["clip"],
        duration=duration,
        bounds=bounds,
        steps=tuple(steps),
    )


def load_split_file(path: str | Path) -> list[VideoAnnotation]:
    """Read one ``all_data_<split>.json`` into records, in file order."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise AnnotationError(f"{path}: the top level must map query -> {{video: annotation}}")
    out = []
    for query, videos in data.items():
        if not isinstance(videos, dict):
            raise AnnotationError(f"{path}: query {query!r}: expected a mapping of video -> annotation")
        for video, entry in videos.items():
            out.append(parse_video(query, video, entry, f"{path}: query {query!r} video {video!r}"))
    return out


def load_split(root: str | Path, split: str) -> list[VideoAnnotation]:
    """Read ``<root>/splits/all_data_<split>.json``."""
    path = Path(root) / SPLIT_FILE.format(split=split)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: a HiREST root holds splits/all_data_<split>.json "
            "(the official files are vendored in data/hirest; `quag make-sim` writes a simulated root)"
        )
    return load_split_file(path)


def load_categories(root: str | Path) -> dict[str, dict[str, str]]:
    """``{"prompt_to_cat": {...}, "video_to_cat": {...}}`` from ``evaluation/categories.json``."""
    path = Path(root) / CATEGORIES_FILE
    data = read_json(path)
    for key in ("prompt_to_cat", "video_to_cat"):
        if not isinstance(data, dict) or not isinstance(data.get(key), dict):
            raise AnnotationError(f"{path}: missing mapping {key!r}")
    return data


# ----------------------------------------------------------------------------------------------------------
# per-task examples (frame indices, 1 fps)


@dataclass(frozen=True)
class MomentRetrievalExample:
    video: VideoAnnotation
    start_frame: int
    end_frame: int


@dataclass(frozen=True)
class SegmentationTrainExample:
    """Teacher-forced next-boundary example: given boundaries ``b_0..b_i``, predict ``b_{i+1}``."""

    video: VideoAnnotation
    prev_boundary_frames: tuple[int, ...]
    target_frame: int
    region: tuple[int, int]
    """Allowed frames ``[frame(b_i), frame(moment end)]`` (inclusive): the moment mask of this example."""
    boundary_frames: tuple[int, ...]


@dataclass(frozen=True)
class SegmentationEvalExample:
    video: VideoAnnotation
    moment_frames: tuple[int, int]
    boundary_frames: tuple[int, ...]


@dataclass(frozen=True)
class CaptionExample:
    video: VideoAnnotation
    step: Step
    window: tuple[int, int]
    """Step frames ``[frame(start), frame(end)]`` (inclusive)."""


def moment_videos(videos: Iterable[VideoAnnotation]) -> list[VideoAnnotation]:
    """The pairs every task uses: relevant and clip."""
    return [v for v in videos if v.has_moment]


def moment_retrieval_examples(videos: Iterable[VideoAnnotation]) -> list[MomentRetrievalExample]:
    out = []
    for v in moment_videos(videos):
        n = v.num_frames
        out.append(MomentRetrievalExample(v, seconds_to_frame(v.bounds[0], n), seconds_to_frame(v.bounds[1], n)))
    return out


def unique_boundaries(v: VideoAnnotation) -> list[float]:
    """Sorted unique step boundary timestamps (seconds) of a video."""
    return sorted({t for s in v.steps for t in (s.start, s.end)})


def segmentation_train_examples(videos: Iterable[VideoAnnotation]) -> list[SegmentationTrainExample]:
    out = []
    for v in moment_videos(videos):
        bounds = unique_boundaries(v)
        if len(bounds) <= 2:  # the official loader drops these (3 train videos)
            continue
        n = v.num_frames
        frames = tuple(seconds_to_frame(t, n) for t in bounds)
        end_frame = seconds_to_frame(v.bounds[1], n)
        for i in range(len(bounds) - 1):
            out.append(
                SegmentationTrainExample(
                    video=v,
                    prev_boundary_frames=frames[: i + 1],
                    target_frame=frames[i + 1],
                    region=(frames[i], end_frame),
                    boundary_frames=frames,
                )
            )
    return out


def segmentation_eval_examples(videos: Iterable[VideoAnnotation]) -> list[SegmentationEvalExample]:
    out = []
    for v in moment_videos(videos):
        if not v.steps:
            continue
        n = v.num_frames
        frames = tuple(seconds_to_frame(t, n) for t in unique_boundaries(v))
        out.append(
            SegmentationEvalExample(v, (seconds_to_frame(v.bounds[0], n), seconds_to_frame(v.bounds[1], n)), frames)
        )
    return out


def caption_examples(videos: Iterable[VideoAnnotation]) -> list[CaptionExample]:
    out = []
    for v in moment_videos(videos):
        n = v.num_frames
        for s in v.steps:
            out.append(CaptionExample(v, s, (seconds_to_frame(s.start, n), seconds_to_frame(s.end, n))))
    return out
