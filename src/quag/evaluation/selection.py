"""Checkpoint selection: score a split's predictions per task and reduce them to one ``mean_score``.

Training keeps the checkpoint with the highest ``val/mean_score``; ``quag infer --evaluate`` reports the same
numbers. See docs/evaluation.md for the metrics and docs/training.md for the selection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quag.data.annotations import VideoAnnotation
from quag.evaluation.captions import CaptionOptions
from quag.evaluation.evaluate import evaluate_predictions, flat_metrics
from quag.tasks import Task


def selection_score(metrics: dict[str, float]) -> float:
    """``val/mean_score``: mean over the trained tasks of one score per task (all on a 0-100 scale).

    moment retrieval: mean of R@0.5 and R@0.7; moment segmentation: mean of recall and precision at IoU 0.5 and
    0.7 (our predictions, no ground-truth refill); step captioning: CIDEr.
    """
    parts = []
    mr = [metrics[k] for k in ("moment_retrieval/R@0.5", "moment_retrieval/R@0.7") if k in metrics]
    if mr:
        parts.append(sum(mr) / len(mr))
    ms = [v for k, v in metrics.items() if k.startswith("moment_segmentation/") and ("recall" in k or "precision" in k)]
    if ms:
        parts.append(sum(ms) / len(ms))
    if "step_captioning/CIDEr" in metrics:
        parts.append(metrics["step_captioning/CIDEr"])
    return float(sum(parts) / len(parts)) if parts else float("nan")


def evaluate_task_predictions(
    predictions: Mapping[Task, Any],
    videos: list[VideoAnnotation],
    caption_metrics: tuple[str, ...] = ("Bleu_4", "METEOR", "ROUGE_L", "CIDEr"),
) -> dict[str, float]:
    """Score predictions of a split with the official metrics; flat ``{"<task>/<metric>": value}``.

    Moment segmentation is scored on the predicted segments as they are (no ground-truth refill).

    Args:
        predictions: task -> its official-format prediction object (``TaskPredictions.official`` of
            :mod:`quag.inference.runner`).
        videos: annotations of the split.
        caption_metrics: step-captioning metrics to compute.
    """
    out: dict[str, float] = {}
    for task, official in predictions.items():
        opts: dict[str, Any] = {}
        if task == "step_captioning":
            opts["caption_options"] = CaptionOptions(metrics=tuple(caption_metrics))
        report = evaluate_predictions(official, videos, task, **opts)
        out.update({k: float(v) for k, v in flat_metrics(report).items() if isinstance(v, (int, float))})
    return out
