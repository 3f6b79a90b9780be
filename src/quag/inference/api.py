"""``run_inference``: checkpoint + split -> prediction files (+ metrics). What ``quag infer`` calls.

``video_retrieval`` needs no model: it ranks the split's videos by pooled features (:mod:`quag.inference.retrieval`),
so :func:`run_inference` runs it without a checkpoint when a data root is given.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from quag.checkpoint import load_checkpoint, read_checkpoint_info
from quag.config import apply_overrides, config_from_dict, config_to_dict
from quag.data import annotations as A
from quag.data.datasets import build_datasets, make_store
from quag.evaluation.selection import evaluate_task_predictions, selection_score
from quag.inference.device import resolve_device
from quag.inference.runner import TaskPredictions, predict_end_to_end, predict_task, video_records
from quag.io import atomic_write_json, atomic_write_jsonl
from quag.tasks import Task

logger = logging.getLogger(__name__)


VIDEO_RETRIEVAL = "video_retrieval"
"""The zero-shot task :func:`run_inference` adds to the model's three."""


def run_inference(
    checkpoint: str | Path | None,
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
    retrieval_stream: str = "auto",
) -> dict[str, Any]:
    """Decode ``split`` with a checkpoint and write the official prediction files.

    Args:
        checkpoint: checkpoint folder; may be None when ``tasks`` is ``["video_retrieval"]`` and ``data_root`` is
            given.
        split: split name of the dataset root.
        data_root: dataset root (default: the one the checkpoint was trained on).
        out_dir: output folder (default: ``<run>/predictions`` next to the checkpoint folder, or ``predictions``
            without a checkpoint).
        tasks: tasks to decode (default: the trained ones); ``video_retrieval`` ranks the split's videos for each
            query, zero-shot.
        end_to_end: also write retrieval -> segmentation -> captioning records.
        evaluate: score the per-task predictions against the split (needs its moments and steps).
        device: torch device (``auto``: CUDA if present).
        overrides: ``eval.key=value`` decoding overrides.
        progress: progress bars.
        caption_metrics: step-captioning metrics computed with ``evaluate``.
        retrieval_stream: features pooled by ``video_retrieval``: ``auto``, ``visual`` or ``transcript``.

    Returns:
        ``{"files": [...], "metrics": {...}, "metrics_file": path}``.
    """
    if tasks is not None and VIDEO_RETRIEVAL in tasks:
        model_tasks = [t for t in tasks if t != VIDEO_RETRIEVAL]
        if not model_tasks:
            if checkpoint is None and data_root is None:
                raise ValueError("video_retrieval needs a dataset root (--data) or a checkpoint (its data.root)")
            if checkpoint is not None:
                data_root = data_root or read_checkpoint_info(checkpoint)[0].data.root
                out_dir = out_dir or Path(checkpoint).resolve().parents[1] / "predictions"
            assert data_root is not None
            return _video_retrieval_only(data_root, split, out_dir, evaluate, retrieval_stream)
        if checkpoint is None:
            raise ValueError(f"a checkpoint is needed to decode {', '.join(model_tasks)}")
        combined = run_inference(
            checkpoint,
            split=split,
            data_root=data_root,
            out_dir=out_dir,
            tasks=model_tasks,
            end_to_end=end_to_end,
            evaluate=evaluate,
            device=device,
            overrides=overrides,
            progress=progress,
            caption_metrics=caption_metrics,
        )
        root = data_root or read_checkpoint_info(checkpoint)[0].data.root
        out = Path(combined["files"][0]).parent  # beside the model's predictions
        vr = _video_retrieval_only(root, split, out, evaluate, retrieval_stream)
        combined["files"].extend(vr["files"])
        if "metrics" in vr:
            combined.setdefault("metrics", {}).update(vr["metrics"])
        return combined
    if checkpoint is None:
        raise ValueError("a checkpoint is needed to decode moments, segments and captions")
    dev = resolve_device(device)
    model, cfg, spec, _ = load_checkpoint(checkpoint, dev)
    bad = [o for o in overrides or [] if not o.startswith("eval.")]
    if bad:
        raise ValueError(f"only eval.* decoding settings can be changed at inference, got {bad}")
    cfg = config_from_dict(apply_overrides(config_to_dict(cfg), overrides or []))
    data_cfg = dataclasses.replace(cfg.data, root=data_root or cfg.data.root)
    store = make_store(data_cfg)
    if cfg.model.visual_dim == 0:  # a speech-only model never reads frame files, whatever the root holds
        store.drop_visual()
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
        preds[task] = predict_task(model, ds, cfg.eval, dev, progress=progress)
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


def _video_retrieval_only(
    data_root: str | Path, split: str, out_dir: str | Path | None, evaluate: bool, stream: str
) -> dict[str, Any]:
    """Rank ``split``'s videos for its queries (:func:`quag.inference.retrieval.rank_split_videos`), write
    ``<split>_video_retrieval.json`` and, with ``evaluate``, its R@k."""
    from quag.config import DataConfig
    from quag.evaluation.evaluate import evaluate_predictions, flat_metrics
    from quag.inference.retrieval import rank_split_videos

    store = make_store(DataConfig(root=str(data_root)))
    videos = A.load_split(data_root, split)
    preds = rank_split_videos(store, videos, stream)  # type: ignore[arg-type]
    out = Path(out_dir) if out_dir is not None else Path("predictions")
    summary: dict[str, Any] = {"files": [str(atomic_write_json(out / f"{split}_{VIDEO_RETRIEVAL}.json", preds))]}
    if evaluate:
        report = evaluate_predictions(preds, videos, VIDEO_RETRIEVAL)
        summary["metrics"] = {k: float(v) for k, v in flat_metrics(report).items() if isinstance(v, (int, float))}
    return summary
