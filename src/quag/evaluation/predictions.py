"""Prediction files of the four HiREST tasks: the official JSON formats, an equivalent JSONL form, validation.

Official JSON (what HiREST's ``run.py`` / ``inference_video_retrieval.py`` write and its ``evaluate.py`` reads;
extra fields such as ``video_duration``, ``pred_bounds``, ``target_bounds`` are ignored, and so is the numeric
top-level ``"loss"`` that validation dumps carry):

=================== ============================================================================================
task                official JSON
=================== ============================================================================================
video_retrieval     ``{query: {"videos": [video, ...], "scores": [float, ...]}}`` (same length; ranked by score)
moment_retrieval    ``{query: {video: {"bounds": [start, end]}}}``
moment_segmentation ``{video: {"bounds": [[s0, s1], [s1, s2], ...]}}``
step_captioning     ``{video: {"captions": [{"sentence": str}, ...]}}`` in ground-truth step order;
                    each caption may also carry ``"start"``/``"end"`` (seconds)
=================== ============================================================================================

JSONL (a ``.jsonl`` file, one JSON object per line; what :meth:`to_record` writes):

=================== ============================================================================================
task                fields of one line
=================== ============================================================================================
video_retrieval     ``query`` (str), ``videos`` (list of str), ``scores`` (list of float)
moment_retrieval    ``query`` (str), ``video`` (str), ``bounds`` ([start, end] in seconds)
moment_segmentation ``video`` (str), ``bounds`` (list of [start, end])
step_captioning     ``video`` (str), ``captions`` (list of {"sentence", optional "start", "end"})
=================== ============================================================================================

Video keys are the split-file keys, with their ``.mp4`` suffix. Times are seconds. Every malformed entry
raises :class:`PredictionError` naming the file (and line), the query or video, and the field: wrong nesting,
non-finite numbers (``NaN`` bounds), a ``[start, end]`` that is not two numbers, an empty caption list,
duplicate JSONL records. Reversed bounds (end < start) are valid input and score IoU 0, as in the official code.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quag.io import atomic_write_json, atomic_write_jsonl, json_error_text

EVAL_TASKS: tuple[str, ...] = ("video_retrieval", "moment_retrieval", "moment_segmentation", "step_captioning")


MAX_LISTED = 20
"""Extra (unknown) items listed by name in a report; all of them are counted."""


def coverage_report(
    metrics: dict[str, Any], n_ground_truth: int, missing: list[Any], extra: list[Any], **counts: Any
) -> dict[str, Any]:
    """The report every task returns: metrics, how many ground-truth items were predicted, missing or extra
    (plus task-specific ``counts``), every missing item and the first :data:`MAX_LISTED` extra ones."""
    return {
        "metrics": metrics,
        "counts": {
            "ground_truth": n_ground_truth,
            "predicted": n_ground_truth - len(missing),
            "missing": len(missing),
            "extra": len(extra),
            **counts,
        },
        "missing_items": missing,
        "extra_items": extra[:MAX_LISTED],
    }


class PredictionError(ValueError):
    """A malformed prediction file or object; the message names the video (or query) and the field."""


@dataclass(frozen=True)
class RankingPrediction:
    """Video retrieval: every candidate video of a query with its score."""

    query: str
    videos: tuple[str, ...]
    scores: tuple[float, ...]

    @property
    def key(self) -> str:
        return self.query

    def to_record(self) -> dict[str, Any]:
        return {"query": self.query, "videos": list(self.videos), "scores": list(self.scores)}


@dataclass(frozen=True)
class MomentPrediction:
    """Moment retrieval: one ``[start, end]`` span (seconds) for a (query, video) pair."""

    query: str
    video: str
    start: float
    end: float

    @property
    def key(self) -> tuple[str, str]:
        return (self.query, self.video)

    def to_record(self) -> dict[str, Any]:
        return {"query": self.query, "video": self.video, "bounds": [self.start, self.end]}


@dataclass(frozen=True)
class SegmentationPrediction:
    """Moment segmentation: consecutive ``[start, end]`` step segments (seconds) of a video."""

    video: str
    segments: tuple[tuple[float, float], ...]

    @property
    def key(self) -> str:
        return self.video

    def to_record(self) -> dict[str, Any]:
        return {"video": self.video, "bounds": [list(s) for s in self.segments]}


@dataclass(frozen=True)
class Caption:
    sentence: str
    start: float | None = None
    end: float | None = None

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sentence": self.sentence}
        if self.start is not None and self.end is not None:
            out.update(start=self.start, end=self.end)
        return out


@dataclass(frozen=True)
class CaptionPrediction:
    """Step captioning: one caption per ground-truth step, in step order."""

    video: str
    captions: tuple[Caption, ...]

    @property
    def key(self) -> str:
        return self.video

    def to_record(self) -> dict[str, Any]:
        return {"video": self.video, "captions": [c.to_record() for c in self.captions]}


Prediction = RankingPrediction | MomentPrediction | SegmentationPrediction | CaptionPrediction
_TYPES: dict[str, type] = {
    "video_retrieval": RankingPrediction,
    "moment_retrieval": MomentPrediction,
    "moment_segmentation": SegmentationPrediction,
    "step_captioning": CaptionPrediction,
}


@dataclass
class Predictions:
    """Validated predictions of one task, keyed by query (VR), (query, video) (MR) or video (MS, SC)."""

    task: str
    items: dict[Any, Any] = field(default_factory=dict)
    source: str = "<predictions>"

    def add(self, pred: Prediction, where: str) -> None:
        if pred.key in self.items:
            raise PredictionError(f"{where}: duplicate prediction for {_describe(pred.key)}")
        self.items[pred.key] = pred

    def to_official(self) -> dict[str, Any]:
        """The official nested JSON object of these predictions."""
        out: dict[str, Any] = {}
        for p in self.items.values():
            if isinstance(p, MomentPrediction):
                out.setdefault(p.query, {})[p.video] = {"bounds": [p.start, p.end]}
            else:
                record = p.to_record()
                out[record.pop("query" if isinstance(p, RankingPrediction) else "video")] = record
        return out

    def to_records(self) -> list[dict[str, Any]]:
        return [p.to_record() for p in self.items.values()]


def _describe(key: Any) -> str:
    return f"query {key[0]!r} video {key[1]!r}" if isinstance(key, tuple) else repr(key)


def check_task(task: str) -> str:
    if task not in EVAL_TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(EVAL_TASKS)}")
    return task


# ----------------------------------------------------------------------------------------------------------
# field validation


def _number(value: Any, where: str, name: str, kind: str = "number of seconds") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PredictionError(f"{where}: field {name!r} must be a finite {kind}, got {value!r}")
    return float(value)


def _span(value: Any, where: str, name: str) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise PredictionError(f"{where}: field {name!r} must be [start, end] in seconds, got {value!r}")
    return _number(value[0], where, name), _number(value[1], where, name)


def _string(value: Any, where: str, name: str) -> str:
    if not isinstance(value, str):
        raise PredictionError(f"{where}: field {name!r} must be a string, got {value!r}")
    return value


def _field(entry: Any, key: str, where: str, shape: str) -> Any:
    if not isinstance(entry, dict):
        raise PredictionError(f"{where}: expected an object {shape}, got {type(entry).__name__} {entry!r:.80}")
    if key not in entry:
        raise PredictionError(f"{where}: missing field {key!r} (expected {shape})")
    return entry[key]


def _ranking(query: str, entry: Any, where: str) -> RankingPrediction:
    shape = '{"videos": [...], "scores": [...]}'
    videos, scores = _field(entry, "videos", where, shape), _field(entry, "scores", where, shape)
    if not isinstance(videos, list) or not isinstance(scores, list):
        raise PredictionError(f"{where}: fields 'videos' and 'scores' must be lists")
    if len(videos) != len(scores):
        raise PredictionError(f"{where}: field 'scores' has {len(scores)} values for {len(videos)} videos")
    return RankingPrediction(
        query,
        tuple(_string(v, where, f"videos[{i}]") for i, v in enumerate(videos)),
        tuple(_number(s, where, f"scores[{i}]", "score") for i, s in enumerate(scores)),
    )


def _moment(query: str, video: str, entry: Any, where: str) -> MomentPrediction:
    if isinstance(entry, list):
        raise PredictionError(
            f'{where}: expected an object {{"bounds": [start, end]}}, got a list; moment_retrieval predictions '
            "nest query -> video -> {bounds} (a video -> {bounds: [[s, e], ...]} file is moment_segmentation)"
        )
    start, end = _span(_field(entry, "bounds", where, '{"bounds": [start, end]}'), where, "bounds")
    return MomentPrediction(query, video, start, end)


def _segments(video: str, entry: Any, where: str) -> SegmentationPrediction:
    bounds = _field(entry, "bounds", where, '{"bounds": [[start, end], ...]}')
    if not isinstance(bounds, list):
        raise PredictionError(f"{where}: field 'bounds' must be a list of [start, end] segments, got {bounds!r:.80}")
    if len(bounds) == 2 and all(isinstance(b, (int, float)) for b in bounds):
        raise PredictionError(
            f"{where}: field 'bounds' is a single [start, end], not a list of segments "
            "(is this a moment_retrieval file? moment_segmentation expects [[s0, s1], [s1, s2], ...])"
        )
    return SegmentationPrediction(video, tuple(_span(b, where, f"bounds[{i}]") for i, b in enumerate(bounds)))


def _captions(video: str, entry: Any, where: str) -> CaptionPrediction:
    captions = _field(entry, "captions", where, '{"captions": [{"sentence": ...}, ...]}')
    if not isinstance(captions, list):
        raise PredictionError(f"{where}: field 'captions' must be a list of {{\"sentence\": ...}} objects")
    if not captions:
        raise PredictionError(f"{where}: field 'captions' is empty; the format has one caption per ground-truth step")
    out = []
    for i, c in enumerate(captions):
        name = f"captions[{i}]"
        sentence = _string(_field(c, "sentence", where, f'{name} = {{"sentence": ...}}'), where, f"{name}.sentence")
        start = _number(c["start"], where, f"{name}.start") if c.get("start") is not None else None
        end = _number(c["end"], where, f"{name}.end") if c.get("end") is not None else None
        out.append(Caption(sentence, start, end))
    return CaptionPrediction(video, tuple(out))


# ----------------------------------------------------------------------------------------------------------
# whole files / objects


def _parse_official(obj: dict[str, Any], task: str, source: str) -> Predictions:
    preds = Predictions(task, source=source)
    for key, entry in obj.items():
        if key == "loss" and not isinstance(entry, dict):
            continue  # validation dumps of the official run.py carry the loss at the top level
        if task == "video_retrieval":
            preds.add(_ranking(key, entry, f"{source}: query {key!r}"), source)
        elif task == "moment_retrieval":
            where = f"{source}: query {key!r}"
            if isinstance(entry, dict) and "bounds" in entry:
                raise PredictionError(
                    f"{where}: found 'bounds' directly under the top-level key; moment_retrieval predictions nest "
                    "query -> video -> {bounds} (video -> {bounds} is the moment_segmentation format)"
                )
            if not isinstance(entry, dict):
                raise PredictionError(f'{where}: expected an object mapping video -> {{"bounds": [start, end]}}')
            for video, item in entry.items():
                preds.add(_moment(key, video, item, f"{where} video {video!r}"), source)
        elif task == "moment_segmentation":
            where = f"{source}: video {key!r}"
            if (
                isinstance(entry, dict)
                and "bounds" not in entry
                and any(isinstance(v, dict) and "bounds" in v for v in entry.values())
            ):
                raise PredictionError(
                    f"{where}: missing field 'bounds'; this looks like moment_retrieval (query -> video -> {{bounds}})"
                )
            preds.add(_segments(key, entry, where), source)
        else:
            preds.add(_captions(key, entry, f"{source}: video {key!r}"), source)
    return preds


def _parse_record(record: Any, task: str, where: str) -> Prediction:
    if not isinstance(record, dict):
        raise PredictionError(f"{where}: expected a JSON object per line, got {type(record).__name__}")
    if task == "video_retrieval":
        query = _string(_field(record, "query", where, "record"), where, "query")
        return _ranking(query, record, f"{where} (query {query!r})")
    if task == "moment_retrieval":
        query = _string(_field(record, "query", where, "record"), where, "query")
        video = _string(_field(record, "video", where, "record"), where, "video")
        return _moment(query, video, record, f"{where} (query {query!r} video {video!r})")
    video = _string(_field(record, "video", where, "record"), where, "video")
    if task == "moment_segmentation":
        return _segments(video, record, f"{where} (video {video!r})")
    return _captions(video, record, f"{where} (video {video!r})")


def parse_predictions(obj: Any, task: str, source: str = "<predictions>") -> Predictions:
    """Validate predictions given as the official JSON object, a list of JSONL records, or prediction objects.

    Args:
        obj: official nested dict, list of record dicts, list of ``*Prediction`` objects, or :class:`Predictions`.
        task: one of :data:`EVAL_TASKS`.
        source: file name (or description) used in error messages.

    Raises:
        PredictionError: naming the query/video and the field of the first malformed entry.
    """
    check_task(task)
    if isinstance(obj, Predictions):
        if obj.task != task:
            raise PredictionError(f"{source}: predictions are for {obj.task}, not {task}")
        return obj
    if isinstance(obj, dict):
        return _parse_official(obj, task, source)
    if isinstance(obj, Iterable) and not isinstance(obj, (str, bytes)):
        preds = Predictions(task, source=source)
        for n, item in enumerate(obj, 1):
            where = f"{source} record {n}"
            if isinstance(item, _TYPES[task]):
                preds.add(item, where)  # type: ignore[arg-type]
            else:
                preds.add(_parse_record(item, task, where), where)
        return preds
    raise PredictionError(f"{source}: expected the official JSON object or a list of records, got {type(obj).__name__}")


def load_predictions(path: str | Path, task: str) -> Predictions:
    """Read a prediction file: ``.jsonl`` as one record per line, anything else as official JSON."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prediction file {path} not found")
    check_task(task)
    if path.suffix == ".jsonl":
        preds = Predictions(task, source=str(path))
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{path} line {n}"
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise PredictionError(f"{where}: not valid JSON ({json_error_text(e)})") from e
                preds.add(_parse_record(record, task, where), where)
        return preds
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except json.JSONDecodeError as e:
        raise PredictionError(f"{path}: not valid JSON ({json_error_text(e)})") from e
    if not isinstance(obj, dict):
        raise PredictionError(f"{path}: the official {task} format is a JSON object at the top level")
    return _parse_official(obj, task, str(path))


def write_predictions(path: str | Path, predictions: Predictions) -> Path:
    """Write predictions atomically: ``.jsonl`` as records, anything else as the official JSON."""
    path = Path(path)
    if path.suffix == ".jsonl":
        return atomic_write_jsonl(path, predictions.to_records())
    return atomic_write_json(path, predictions.to_official())
