"""Score predictions of any system with the official HiREST protocol: ``evaluate_files`` and ``evaluate_predictions``.

Both ``quag evaluate`` and training call these functions; nothing here imports a model. A report is a JSON-able
dict::

    {
      "task": "moment_retrieval",
      "metrics": {"all": {"R@0.5": ..., "R@0.7": ..., "total_videos": 193, "missing": 0}, <category>: {...}},
      "counts": {"ground_truth": 193, "predicted": 193, "missing": 0, "extra": 0, ...},
      "missing_items": [...], "extra_items": [... first 20 ...],
      "options": {...},
      # step_captioning only:
      "scorers": {metric: what produced it}, "not_computed": {metric: why not},
    }

Metric keys and scales are the official ones: ``R@0.5``/``R@0.7`` (MR), ``R@1``..``R@50`` (VR),
``precision``/``recall`` -> ``{"0.5", "0.7"}`` (MS), ``Bleu_1``..``Bleu_4``, ``METEOR``, ``ROUGE_L``, ``CIDEr``,
``SPICE``, ``Entailment`` (x100) and ``BERTScore_F1`` (0-1) (SC). A ground-truth item without a prediction
scores 0 and is counted in ``missing``; predictions for unknown items are counted in ``extra``. Moment-retrieval
predictions outside the video (``[-5, -1]``, ``[1e9, 2e9]``) are scored as given, like the official code does, and
counted in ``counts["out_of_range"]`` (the first ones listed in ``out_of_range_items``: query, video, bounds,
duration).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from quag.data.annotations import VideoAnnotation
from quag.evaluation.captions import CaptionOptions, evaluate_step_captioning
from quag.evaluation.ground_truth import (
    Categories,
    StepGroundTruth,
    find_categories_file,
    split_videos,
    step_ground_truth,
)
from quag.evaluation.metrics.captioning import MeteorScorer
from quag.evaluation.metrics.retrieval import (
    MR_THRESHOLDS,
    VR_KS,
    moment_retrieval_hits,
    rank_videos,
    recall_at_iou,
    recall_at_k,
    video_retrieval_hits,
)
from quag.evaluation.metrics.segmentation import (
    MS_THRESHOLDS,
    mean_percent,
    preprocess_moment_bounds,
    step_bound_scores,
)
from quag.evaluation.predictions import (
    MAX_LISTED,
    Predictions,
    SegmentationPrediction,
    check_task,
    coverage_report,
    load_predictions,
    parse_predictions,
)

RANGE_TOLERANCE = 1.0
"""Seconds a moment may end past the video's duration and still count as in range: decoding works on 1-fps clips
and a video of 10.6 s has 11 of them (its last clip ends at 11 s)."""


def _groups(labels: Sequence[str], per_category: bool) -> dict[str, list[int]]:
    """``{"all": every index, <category>: its indices (sorted by name)}``."""
    out = {"all": list(range(len(labels)))}
    if per_category:
        for cat in sorted(set(labels)):
            out[cat] = [i for i, c in enumerate(labels) if c == cat]
    return out


def _need_categories(categories: Categories | None, per_category: bool) -> None:
    if per_category and categories is None:
        raise ValueError(
            "per-category results need categories.json: pass categories (CLI: --categories PATH); it is found "
            "automatically only beside a ground-truth file inside a HiREST root"
        )


def preprocess_segmentation(predictions: Predictions, ground_truth: dict[str, StepGroundTruth]) -> Predictions:
    """The official ``--preprocess_moment_bounds`` applied to every predicted video that has ground truth.

    Predictions for videos without ground truth are kept unchanged (the official code raises ``KeyError``).
    See :func:`~quag.evaluation.metrics.segmentation.preprocess_moment_bounds`.
    """
    out = Predictions(predictions.task, source=predictions.source)
    for video, pred in predictions.items.items():
        gt = ground_truth.get(video)
        if gt is not None:
            segments = preprocess_moment_bounds(pred.segments, gt.segments)
            pred = SegmentationPrediction(video, tuple((s, e) for s, e in segments))
        out.items[video] = pred
    return out


def _moment_retrieval(
    preds: Predictions, videos: list[VideoAnnotation], cats: Categories | None, per_cat: bool
) -> dict:
    scored = [v for v in videos if v.clip]  # the official filter is `clip` alone (every released pair is relevant)
    found = [preds.items.get((v.query, v.video)) for v in scored]
    spans = [None if p is None else (p.start, p.end) for p in found]
    hits = moment_retrieval_hits([v.bounds for v in scored], spans, MR_THRESHOLDS)
    labels = [cats.of_prompt(v.query) if cats else "all" for v in scored]
    metrics = {}
    for g, idx in _groups(labels, per_cat).items():
        metrics[g] = {**recall_at_iou(hits[idx], MR_THRESHOLDS), "total_videos": len(idx)}
        metrics[g]["missing"] = sum(found[i] is None for i in idx)
    keys = {(v.query, v.video) for v in scored}
    missing = [[v.query, v.video] for v, p in zip(scored, found, strict=True) if p is None]
    extra = [list(k) for k in preds.items if k not in keys]
    reversed_bounds = sum(p is not None and p.end < p.start for p in found)
    outside = [
        [v.query, v.video, [p.start, p.end], v.duration]
        for v, p in zip(scored, found, strict=True)
        if p is not None and not in_video(p.start, p.end, v.duration)
    ]
    report = coverage_report(
        metrics, len(scored), missing, extra, reversed_bounds=reversed_bounds, out_of_range=len(outside)
    )
    report["out_of_range_items"] = outside[:MAX_LISTED]
    return report


def in_video(start: float, end: float, duration: float) -> bool:
    """True when ``[start, end]`` lies in ``[0, duration]``, up to :data:`RANGE_TOLERANCE` past the end.

    Out-of-range moments are scored as given (the official protocol has no range check), and counted.
    """
    return all(0.0 <= t <= duration + RANGE_TOLERANCE for t in (start, end))


def _video_retrieval(preds: Predictions, videos: list[VideoAnnotation], cats: Categories | None, per_cat: bool) -> dict:
    relevant: dict[str, list[str]] = {}
    for v in videos:  # every video listed under a query counts, whatever its clip flag (official)
        relevant.setdefault(v.query, []).append(v.video)
    queries = list(relevant)
    found = [preds.items.get(q) for q in queries]
    hits = np.array(
        [
            video_retrieval_hits(None if p is None else rank_videos(p.videos, p.scores), relevant[q], VR_KS)
            for q, p in zip(queries, found, strict=True)
        ],
        dtype=bool,
    ).reshape(-1, len(VR_KS))
    labels = [cats.of_prompt(q) if cats else "all" for q in queries]
    metrics = {}
    for g, idx in _groups(labels, per_cat).items():
        metrics[g] = {**recall_at_k(hits[idx], VR_KS), "total_prompt_count": len(idx)}
        metrics[g]["missing"] = sum(found[i] is None for i in idx)
    missing = [q for q, p in zip(queries, found, strict=True) if p is None]
    extra = [q for q in preds.items if q not in relevant]
    return coverage_report(metrics, len(queries), missing, extra)


def _moment_segmentation(
    preds: Predictions, gt: dict[str, StepGroundTruth], cats: Categories | None, per_cat: bool, preprocess: bool
) -> dict:
    videos = list(gt)
    empty = sum(v in preds.items and not preds.items[v].segments for v in videos)  # counted before preprocessing
    if preprocess:
        preds = preprocess_segmentation(preds, gt)
    found = [preds.items.get(v) for v in videos]
    scores = [
        step_bound_scores([] if p is None else p.segments, gt[v].segments, MS_THRESHOLDS)
        for v, p in zip(videos, found, strict=True)
    ]
    labels = [cats.of_video(v) if cats else "all" for v in videos]
    metrics = {}
    for g, idx in _groups(labels, per_cat).items():
        metrics[g] = {
            "precision": {f"{t}": mean_percent([scores[i][t][0] for i in idx]) for t in MS_THRESHOLDS},
            "recall": {f"{t}": mean_percent([scores[i][t][1] for i in idx]) for t in MS_THRESHOLDS},
            "total": len(idx),
            "missing": sum(found[i] is None for i in idx),
        }
    missing = [v for v, p in zip(videos, found, strict=True) if p is None]
    extra = [v for v in preds.items if v not in gt]
    return coverage_report(metrics, len(videos), missing, extra, empty_predictions=empty)


def evaluate_predictions(
    predictions: Any,
    ground_truth: Any,
    task: str,
    *,
    categories: Categories | None = None,
    per_category: bool = False,
    preprocess_moment_bounds: bool = False,
    caption_options: CaptionOptions | None = None,
    meteor: MeteorScorer | None = None,
) -> dict:
    """Score in-memory predictions (the function training calls).

    Args:
        predictions: official JSON object, list of JSONL records or prediction objects, or ``Predictions``.
        ground_truth: video/moment retrieval: a split-file object or ``list[VideoAnnotation]``; segmentation and
            captioning: a formatted step object, a split-file object, ``list[VideoAnnotation]`` or
            ``{video: StepGroundTruth}``.
        task: ``video_retrieval``, ``moment_retrieval``, ``moment_segmentation`` or ``step_captioning``.
        categories: needed only with ``per_category``.
        per_category: add one entry per category (prompt category for VR/MR, video category for MS/SC).
        preprocess_moment_bounds: moment segmentation: apply the official GT-span clipping, NMS and refill first.
        caption_options: step captioning scorers (default: the coco-caption set; NLI/BERTScore off).
        meteor: step captioning: a running METEOR process to reuse.

    Returns:
        The report dict described in the module docstring.
    """
    check_task(task)
    _need_categories(categories, per_category)
    preds = parse_predictions(predictions, task)
    options: dict[str, Any] = {"per_category": per_category}
    if task == "moment_retrieval":
        body = _moment_retrieval(preds, split_videos(ground_truth), categories, per_category)
    elif task == "video_retrieval":
        body = _video_retrieval(preds, split_videos(ground_truth), categories, per_category)
    elif task == "moment_segmentation":
        gt = step_ground_truth(ground_truth)
        body = _moment_segmentation(preds, gt, categories, per_category, preprocess_moment_bounds)
        options["preprocess_moment_bounds"] = preprocess_moment_bounds
    else:
        gt = step_ground_truth(ground_truth)
        videos = list(gt)
        labels = [categories.of_video(v) if categories else "all" for v in videos]
        video_groups = {g: [videos[i] for i in idx] for g, idx in _groups(labels, per_category).items()}
        body = evaluate_step_captioning(preds, gt, video_groups, caption_options, meteor)
        opts = caption_options or CaptionOptions()
        options["caption_metrics"] = list(opts.metrics)
    return {"task": task, **body, "options": options}


def evaluate_files(
    pred_path: str | Path,
    gt_path: str | Path,
    task: str,
    *,
    categories_path: str | Path | None = None,
    per_category: bool = False,
    **options: Any,
) -> dict:
    """Score a prediction file against a ground-truth file (what ``quag evaluate`` runs).

    Args:
        pred_path: official JSON or JSONL predictions (see :mod:`quag.evaluation.predictions`).
        gt_path: split file (VR, MR; also accepted for MS/SC) or formatted step file (MS, SC).
        task: the task name.
        categories_path: ``categories.json``; default: ``evaluation/categories.json`` of the GT file's root.
        per_category: add per-category entries.
        **options: passed to :func:`evaluate_predictions` (``preprocess_moment_bounds``, ``caption_options``,
            ``meteor``).
    """
    check_task(task)
    predictions = load_predictions(pred_path, task)
    categories = None
    if per_category:
        path = Path(categories_path) if categories_path is not None else find_categories_file(gt_path)
        if path is None:
            raise FileNotFoundError(f"no evaluation/categories.json found for {gt_path}; pass --categories PATH")
        categories = Categories.from_file(path)
    loader = split_videos if task in ("video_retrieval", "moment_retrieval") else step_ground_truth
    ground_truth = loader(gt_path)
    report = evaluate_predictions(
        predictions, ground_truth, task, categories=categories, per_category=per_category, **options
    )
    report["prediction_file"] = str(pred_path)
    report["ground_truth_file"] = str(gt_path)
    return report


def flat_metrics(report: dict) -> dict[str, float]:
    """The ``"all"`` metrics as ``{"<task>/<metric>": value}`` (MS: ``<task>/precision@0.5``), for logging."""
    out = {}
    for key, value in report["metrics"]["all"].items():
        if isinstance(value, dict):
            for t, v in value.items():
                out[f"{report['task']}/{key}@{t}"] = float(v)
        elif key not in ("missing", "Total", "total", "total_videos", "total_prompt_count"):
            out[f"{report['task']}/{key}"] = float(value)
    return out


def _columns(sample: dict[str, Any]) -> list[tuple[str, Any]]:
    cols: list[tuple[str, Any]] = []
    for key, value in sample.items():
        if isinstance(value, dict):
            cols += [(f"{key}@{t}", (key, t)) for t in value]
        else:
            cols.append((key, key))
    return cols


def format_rows(title: str, rows: dict[str, dict[str, Any]], first: str = "group") -> str:
    """Aligned plain-text table: one row per entry of ``rows`` (name -> metrics), columns from the first row.

    Nested metrics (MS ``{"precision": {"0.5": ...}}``) become columns ``precision@0.5``, ``recall@0.5``, ...
    """
    cols = _columns(next(iter(rows.values()))) if rows else []
    header = [first, *[c for c, _ in cols]]
    body = []
    for name, values in rows.items():
        row = [name]
        for _, key in cols:
            v = values.get(key[0], {}).get(key[1], "") if isinstance(key, tuple) else values.get(key, "")
            row.append(f"{v:.2f}" if isinstance(v, float) else str(v))
        body.append(row)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = [title]
    for r in [header, *body]:
        lines.append(
            "  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True)))
        )
    return "\n".join(lines)


def format_table(report: dict) -> str:
    """A plain-text table of a report: one row per group, one column per metric, then counts and caveats."""
    lines = [format_rows(report["task"], report["metrics"])]
    lines.append("counts: " + ", ".join(f"{k} {v}" for k, v in report["counts"].items()))
    for metric, reason in report.get("not_computed", {}).items():
        lines.append(f"not computed: {metric}: {reason}")
    return "\n".join(lines)
