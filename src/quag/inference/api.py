"""``run_inference``: checkpoint + split -> prediction files (+ metrics). What ``quag infer`` calls."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from quag.checkpoint import load_checkpoint
from quag.config import apply_overrides, config_from_dict, config_to_dict
from quag.data import annotations as A
from quag.data.datasets import build_datasets, make_store
from quag.evaluation.selection import evaluate_task_predictions, selection_score
from quag.inference.device import resolve_device
from quag.inference.runner import TaskPredictions, predict_end_to_end, predict_task, video_records
from quag.io import atomic_write_json, atomic_write_jsonl
from quag.tasks import Task

logger = logging.getLogger(__name__)


def run_inference(
    checkpoint: str | Path,
    split: str = "val",
    data_root: str | None = None,
    out_dir: str | Path | None = None,
    tasks: list[str] | None = None,
    end_to_end: bool = False,
    evaluate: bool = False,
    device: str = "auto",
    overrides: list[str] | None = None,
    progress: bool = True,
    caption_metrics: tuple[str, ...] = ("Bleu_4", "METEOR", "ROUGE_L", "CIDEr"),
) -> dict[str, Any]:
    """Decode ``split`` with a checkpoint and write the official prediction files.

    Args:
        checkpoint: checkpoint folder.
        split: split name of the dataset root.
        data_root: dataset root (default: the one the checkpoint was trained on).
        out_dir: output folder (default: ``<run>/predictions`` next to the checkpoint folder).
        tasks: tasks to decode (default: the trained ones).
        end_to_end: also write retrieval -> segmentation -> captioning records.
        evaluate: score the per-task predictions against the split (needs its moments and steps).
        device: torch device (``auto``: CUDA if present).
        overrides: ``eval.key=value`` decoding overrides.
        progress: progress bars.
        caption_metrics: step-captioning metrics computed with ``evaluate``.

    Returns:
        ``{"files": [...], "metrics": {...}, "metrics_file": path}``.
    """
    dev = resolve_device(device)
    model, cfg, spec, _ = load_checkpoint(checkpoint, dev)
    bad = [o for o in overrides or [] if not o.startswith("eval.")]
    if bad:
        raise ValueError(f"only eval.* decoding settings can be changed at inference, got {bad}")
    cfg = config_from_dict(apply_overrides(config_to_dict(cfg), overrides or []))
    data_cfg = dataclasses.replace(cfg.data, root=data_root or cfg.data.root)
    store = make_store(data_cfg)
    spec.check_compatible(store.spec, what="checkpoint", other_what=f"features in {data_cfg.root}")
    run_tasks: list[Task] = list(tasks or cfg.tasks)  # type: ignore[arg-type]
    out = Path(out_dir) if out_dir is not None else Path(checkpoint).resolve().parents[1] / "predictions"
    videos = A.load_split(data_cfg.root, split)
    datasets = build_datasets(data_cfg, split, run_tasks, training=False, store=store, videos=videos)
    preds: dict[Task, TaskPredictions] = {}
    files: list[str] = []
    for task, ds in datasets.items():
        if len(ds) == 0:
            logger.warning(
                "%s: the %s split has no %s examples (public test moments/steps are hidden)", split, split, task
            )
            continue
        preds[task] = predict_task(model, ds, cfg.eval, dev, precision=cfg.train.precision, progress=progress)
        files.append(str(atomic_write_json(out / f"{split}_{task}.json", preds[task].official)))
    files.append(str(atomic_write_jsonl(out / f"{split}_predictions.jsonl", video_records(preds.values()))))
    if end_to_end:
        records = predict_end_to_end(
            model,
            A.moment_videos(videos),
            store,
            data_cfg,
            cfg.eval,
            dev,
            precision=cfg.train.precision,
            progress=progress,
        )
        files.append(str(atomic_write_jsonl(out / f"{split}_end_to_end.jsonl", records)))
    summary: dict[str, Any] = {"files": files}
    if evaluate and preds:
        metrics = evaluate_task_predictions(
            {t: p.official for t, p in preds.items()}, videos, caption_metrics=caption_metrics
        )
        metrics["mean_score"] = selection_score(metrics)
        if "moment_segmentation" in preds:  # the official protocol: clip to, and refill from, the GT moment
            from quag.evaluation.evaluate import evaluate_predictions, flat_metrics

            report = evaluate_predictions(
                preds["moment_segmentation"].official, videos, "moment_segmentation", preprocess_moment_bounds=True
            )
            metrics.update(
                {
                    k.replace("moment_segmentation/", "moment_segmentation_official_refill/"): float(v)
                    for k, v in flat_metrics(report).items()
                    if isinstance(v, (int, float))
                }
            )
        summary["metrics"] = metrics
        summary["metrics_file"] = str(
            atomic_write_json(
                out / f"{split}_metrics.json",
                {
                    "split": split,
                    "data": str(data_cfg.root),
                    "checkpoint": str(checkpoint),
                    "metrics": metrics,
                    "simulated_features": store.spec.simulated,
                },
            )
        )
    return summary
