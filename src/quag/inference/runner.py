"""Batched inference over datasets: model -> official HiREST prediction objects (+ one JSONL record per video).

* moment retrieval: :func:`~quag.inference.moments.decode_spans` on the start/end logits;
* moment segmentation: the front end (QUAG: input embedding, MSP, QC2) runs once per batch, then each round of
  :func:`~quag.inference.segmentation.decode_sequential` (default) or
  :func:`~quag.inference.segmentation.decode_islands` (``eval.segmentation_decoding: reference``) runs only the
  context encoder and the head on the videos still active;
* step captioning: the encoder output of each step window feeds batched beam search with a key/value cache.

Batches group examples of similar length (:func:`_loader`) and run under the autocast dtype of
``eval.precision`` (docs/inference.md, "Batches, precision and speed"). Frames become seconds here (through
:mod:`quag.data.timestamps`). In :func:`predict_end_to_end` the moment comes from retrieval, the steps from
segmenting that moment, and the captions from those steps; nothing on disk is modified.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from quag.config import DataConfig, EvalConfig
from quag.data import annotations as A
from quag.data.collate import Batch, collate
from quag.data.datasets import TaskDataset
from quag.data.features import FeatureSource
from quag.data.timestamps import frame_to_seconds
from quag.data.tokenizer import get_tokenizer
from quag.inference.device import resolve_precision
from quag.inference.moments import decode_spans
from quag.inference.segmentation import (
    boundaries_to_segments,
    decode_islands,
    decode_sequential,
    postprocess_boundaries,
)
from quag.models import HiRESTModel
from quag.models.generation import generate_beam
from quag.tasks import Task

logger = logging.getLogger(__name__)


@dataclass
class TaskPredictions:
    """Official-format prediction object of one task plus per-video details for the JSONL records."""

    task: Task
    official: dict[str, Any] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # video -> partial JSONL record


def _sec(frame: int) -> float:
    return float(frame_to_seconds(int(frame)))


def _loader(
    ds: Dataset, batch_size: int, indices: Sequence[int] | None, workers: int = 0, by_length: bool = True
) -> DataLoader:
    """Batches of ``ds`` (its ``indices``), grouped by length so that a batch pads little (``by_length``).

    Predictions are keyed by video and query, so the order of the batches does not matter; each example's
    output does not depend on its batch mates (padding is masked), except under ``eval.segmentation_length:
    reference`` and ``model.padding: reference``, whose callers keep the dataset order (docs/inference.md).
    """
    order = list(indices) if indices is not None else list(range(len(ds)))  # type: ignore[arg-type]
    lengths = getattr(ds, "lengths", None)
    if by_length and callable(lengths):
        rows = lengths()
        order.sort(key=lambda i: rows[i])  # stable: equal lengths keep the dataset order
    data = Subset(ds, order)
    return DataLoader(
        data, batch_size=batch_size, shuffle=False, collate_fn=collate, num_workers=workers, generator=torch.Generator()
    )  # leaves the global RNG (training dropout) untouched


def _progress(it: Iterable[Batch], desc: str, total: int, show: bool) -> Iterator[Batch]:
    if not show:
        yield from it
        return
    from tqdm import tqdm

    yield from tqdm(it, desc=desc, total=total, unit="batch", leave=False)


def decode_front(model: HiRESTModel, batch: Batch) -> torch.Tensor:
    """The front end's features (B, T, H) of ``batch`` for decoding, without MSP's loss L_msp: a training signal
    the features do not depend on."""
    return model.encode_front(
        batch.video, batch.transcript, batch.query_embedding, batch.video_mask, with_msp_loss=False
    ).features


@torch.no_grad()
def predict_moments(model: HiRESTModel, batch: Batch, cfg: EvalConfig) -> torch.Tensor:
    """(B, 2) predicted moment frames."""
    h = model.encode_context(decode_front(model, batch), batch.video_mask, batch.moment_mask, batch.boundary_mask)
    start, end = model.moment_logits(h)
    return decode_spans(start, end, batch.video_mask, cfg.moment_decoding, cfg.max_moment_frames, cfg.moment_score)


@torch.no_grad()
def predict_boundaries(model: HiRESTModel, batch: Batch, cfg: EvalConfig) -> list[list[int]]:
    """Boundary frames of every video of a segmentation batch (see :mod:`quag.inference.segmentation`)."""
    assert batch.moment_frames is not None
    front = decode_front(model, batch)  # (B, T, D)

    def logits_fn(rows: torch.Tensor, region: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
        h = model.encode_context(front[rows], batch.video_mask[rows], region, boundary)
        return model.segment_logits(h)

    lengths = batch.video_mask.sum(dim=1)
    if cfg.segmentation_decoding == "sequential":
        return decode_sequential(logits_fn, batch.moment_frames, lengths, min_gap=cfg.segmentation_min_gap)
    islands = decode_islands(
        logits_fn,
        batch.moment_frames,
        lengths,
        cfg.segmentation_rounds,
        cfg.segmentation_threshold,
        length=cfg.segmentation_length,
    )
    frames = batch.moment_frames.tolist()
    return [
        postprocess_boundaries(isl, ms, me, cfg.segmentation_min_gap, cfg.segmentation_emit_last)
        for isl, (ms, me) in zip(islands, frames, strict=True)
    ]


@torch.no_grad()
def predict_captions(model: HiRESTModel, batch: Batch, cfg: EvalConfig, use_cache: bool = True) -> list[str]:
    """A caption per step window of ``batch`` (beam search; ``use_cache=False`` reruns the whole prefix every
    step, the same captions more slowly: the benchmarks' naive path)."""
    h = model.encode_context(decode_front(model, batch), batch.video_mask, batch.moment_mask, None)
    ids = generate_beam(
        model.decoder,
        h,
        batch.video_mask,
        num_beams=cfg.num_beams,
        max_len=cfg.max_caption_tokens,
        length_penalty=cfg.length_penalty,
        use_cache=use_cache,
    )
    tok = get_tokenizer()
    return [tok.decode(x, cfg.caption_text) for x in ids]


def _autocast(device: torch.device, precision: str) -> Any:
    precision, _ = resolve_precision(precision, device)
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return torch.autocast(device_type=device.type, enabled=False)


@torch.no_grad()
def predict_task(
    model: HiRESTModel,
    ds: TaskDataset,
    cfg: EvalConfig,
    device: torch.device,
    indices: Sequence[int] | None = None,
    precision: str | None = None,
    progress: bool = False,
) -> TaskPredictions:
    """Predictions of one task for the examples ``indices`` of ``ds`` (all by default)."""
    model.eval()
    out = TaskPredictions(ds.task)
    # the authors' unmasked padding and padded-length island walk make outputs depend on batch mates
    by_length = model.config.padding != "reference" and not (
        ds.task == "moment_segmentation" and cfg.segmentation_length == "reference"
    )
    loader = _loader(ds, cfg.batch_size, indices, by_length=by_length)
    for batch in _progress(loader, ds.task, len(loader), progress):
        batch = batch.to(device)
        with _autocast(device, precision or cfg.precision):
            if ds.task == "moment_retrieval":
                spans = predict_moments(model, batch, cfg).tolist()
                for (s, e), video, query, dur in zip(
                    spans, batch.video_ids, batch.queries, batch.durations, strict=True
                ):
                    bounds = [_sec(s), _sec(e)]
                    out.official.setdefault(query, {})[video] = {"bounds": bounds, "video_duration": dur}
                    out.records[video] = {"query": query, "duration": dur, "moment": bounds}
            elif ds.task == "moment_segmentation":
                for b, video, dur, gt in zip(
                    predict_boundaries(model, batch, cfg),
                    batch.video_ids,
                    batch.durations,
                    batch.boundary_frames,
                    strict=True,
                ):
                    segs = [[_sec(x), _sec(y)] for x, y in boundaries_to_segments(b)]
                    out.official[video] = {
                        "bounds": segs,
                        "video_duration": dur,
                        "pred_bounds": b,
                        "target_bounds": list(gt),
                    }
                    out.records.setdefault(video, {"duration": dur})["segments"] = segs
            else:
                captions = predict_captions(model, batch, cfg)
                for text, video, dur, step, (ws, we) in zip(
                    captions, batch.video_ids, batch.durations, batch.step_indices, batch.windows, strict=True
                ):
                    entry = out.official.setdefault(video, {"captions": [], "video_duration": dur})
                    entry["captions"].append((step, {"sentence": text, "start": _sec(ws), "end": _sec(we)}))
    if ds.task == "step_captioning":  # captions in step order
        for video, entry in out.official.items():
            entry["captions"] = [c for _, c in sorted(entry["captions"], key=lambda x: x[0])]
            out.records[video] = {"duration": entry["video_duration"], "captions": entry["captions"]}
    return out


def merge_task_predictions(parts: Iterable[TaskPredictions]) -> TaskPredictions:
    """Union of per-rank predictions of one task (captions of a video re-sorted by start time)."""
    parts = list(parts)
    merged = TaskPredictions(parts[0].task)
    for p in parts:
        for key, value in p.official.items():
            if merged.task == "moment_retrieval":
                merged.official.setdefault(key, {}).update(value)
            elif merged.task == "step_captioning" and key in merged.official:
                merged.official[key]["captions"] += value["captions"]
                merged.official[key]["captions"].sort(key=lambda c: c["start"])
            else:
                merged.official[key] = value
        for video, rec in p.records.items():
            if merged.task == "step_captioning" and video in merged.records:
                merged.records[video]["captions"] = merged.official[video]["captions"]
            else:
                merged.records[video] = rec
    return merged


def video_records(preds: Iterable[TaskPredictions]) -> list[dict[str, Any]]:
    """One JSONL record per video joining the tasks' outputs (moment, segments, captions)."""
    table: dict[str, dict[str, Any]] = {}
    for p in preds:
        for video, rec in p.records.items():
            table.setdefault(video, {"video": video}).update(rec)
    return [table[k] for k in sorted(table)]


@torch.no_grad()
def predict_end_to_end(
    model: HiRESTModel,
    videos: Sequence[A.VideoAnnotation],
    store: FeatureSource,
    data_cfg: DataConfig,
    cfg: EvalConfig,
    device: torch.device,
    precision: str | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Retrieval -> segmentation of the predicted moment -> a caption per predicted step, per (query, video).

    Returns one record per pair: ``{"video", "query", "duration", "moment": [s, e], "steps": [{"start", "end",
    "sentence"}]}`` (seconds). Input annotations are only read; their moments and steps are never used.
    ``store`` is a :class:`~quag.data.features.FeatureStore` or any other
    :class:`~quag.data.features.FeatureSource` (the predictor passes features held in memory). Segmentation and
    captioning results are keyed by video, so each video may appear once per call.
    """
    kw: dict[str, Any] = dict(
        caption_frames=data_cfg.caption_frames,
        caption_window=data_cfg.caption_window,
        max_caption_tokens=data_cfg.max_caption_tokens,
    )
    mr = TaskDataset("moment_retrieval", [A.MomentRetrievalExample(v, 0, 0) for v in videos], store, **kw)
    moments = predict_task(model, mr, cfg, device, precision=precision, progress=progress)
    seg_examples = []
    for v in videos:
        s, e = moments.official[v.query][v.video]["bounds"]
        seg_examples.append(A.SegmentationEvalExample(v, (int(s), int(e)), ()))
    seg = predict_task(
        model,
        TaskDataset("moment_segmentation", seg_examples, store, **kw),
        cfg,
        device,
        precision=precision,
        progress=progress,
    )
    cap_examples = []
    for v in videos:
        frames = seg.official[v.video]["pred_bounds"]
        for i, (a, b) in enumerate(boundaries_to_segments(frames)):
            cap_examples.append(A.CaptionExample(v, A.Step(i, "", float(a), float(b)), (a, b)))
    caps = (
        predict_task(
            model,
            TaskDataset("step_captioning", cap_examples, store, **kw),
            cfg,
            device,
            precision=precision,
            progress=progress,
        )
        if cap_examples
        else TaskPredictions("step_captioning")
    )
    out = []
    for v in videos:
        steps = caps.official.get(v.video, {"captions": []})["captions"]
        out.append(
            {
                "video": v.video,
                "query": v.query,
                "duration": v.duration,
                "moment": moments.official[v.query][v.video]["bounds"],
                "steps": [{"start": c["start"], "end": c["end"], "sentence": c["sentence"]} for c in steps],
            }
        )
    return out
