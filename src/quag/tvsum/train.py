"""Train one QUAG per TVSum category and seed; record the "protocol" and the "fixed" top-5 mAP.

- protocol (the peers' practice, QD-DETR ``train.py``: evaluate every 5 epochs, keep the best checkpoint): the
  best test-video mAP over the evaluations every ``eval_every`` epochs. It selects on the test video itself;
- fixed: the test-video mAP after the last epoch, no peeking.

An epoch is one pass over the 4 training videos in a random order, in steps of ``batch_size`` whole videos.
Outputs under ``<output_dir>/<name>/`` (every file written atomically)::

    config.yaml                       the resolved config
    seed_<s>/<CAT>.json               one (seed, category): mAPs, the evaluation curve, both predictions, timings
    seed_<s>/results.json             the seed's per-category protocol / fixed mAPs and wall time
    seed_<s>/predictions_fixed.json   {video_id: [score per 2-s clip]} after the last epoch
    seed_<s>/predictions_protocol.json  the same at each category's best evaluation
    summary.json, table.md            mean +- std over seeds beside the paper's Table 5 (quag.tvsum.table)

A rerun skips any (seed, category) whose JSON carries the same training fingerprint, so an interrupted run
resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from quag.io import atomic_write_json, atomic_write_text
from quag.training.optim import build_optimizer, build_scheduler
from quag.tvsum.config import TVSumConfig, dump_tvsum_config
from quag.tvsum.data import TVSUM_SPLITS, TVSumBatch, TVSumVideo, collate_videos, load_tvsum, resolve_tvsum_dir
from quag.tvsum.losses import SaliencyLossWeights, saliency_loss
from quag.tvsum.metrics import top5_map
from quag.tvsum.model import SaliencyOutput, TVSumQuag

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, dict[str, float]], None]
"""Called after every epoch with (epochs done, {"loss": ..., "map": latest test mAP or nan})."""


@dataclass
class CategoryResult:
    """Outcome of one (seed, category) run; top-5 mAPs in percent."""

    category: str
    seed: int
    fingerprint: str
    protocol_map: float
    best_epoch: int
    fixed_map: float
    epochs: int
    wall_s: float
    curve: list[list[float]] = field(default_factory=list)
    """[epoch, test mAP %] at every evaluation."""
    final_losses: dict[str, float] = field(default_factory=dict)
    predictions_fixed: dict[str, list[float]] = field(default_factory=dict)
    predictions_protocol: dict[str, list[float]] = field(default_factory=dict)
    eval_predictions: list[dict[str, list[float]]] = field(default_factory=list)
    """Predictions at every evaluation, aligned with ``curve``; only when asked for (not in ``to_dict``)."""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "eval_predictions"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CategoryResult:
        return cls(**data)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block on ``n`` intra-op threads and restore the caller's count after it (the in-process path must
    not leave the thread count changed: results of later work in the process depend on it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def loss_weights(cfg: TVSumConfig) -> SaliencyLossWeights:
    t = cfg.train
    return SaliencyLossWeights(
        rank_contrastive=t.rank_contrastive_weight,
        margin=t.margin_weight,
        negative_query=t.negative_query_weight,
        msp=t.msp_loss_weight,
        ranking_margin=t.margin,
        temperature=t.rank_temperature,
        levels=t.rank_levels,
    )


def forward_batch(model: TVSumQuag, batch: TVSumBatch, negatives: bool = False) -> SaliencyOutput:
    """Run ``model`` on ``batch`` with the title input its config asks for (pooled vector or tokens); audio is
    passed only to a model that uses it. ``negatives``: also score each video under the title of the previous
    one in the batch (QD-DETR's negative pair; needs two distinct videos)."""
    tokens = model.config.query_input == "tokens"
    if tokens and batch.query_tokens is None:
        raise ValueError("model.query_input=tokens needs the title token features ('token' in query_features/)")
    query = batch.query_tokens if tokens and batch.query_tokens is not None else batch.query_embedding
    query_mask = batch.query_token_mask if tokens else None
    audio = batch.audio if model.config.use_audio else None
    negative = query.roll(1, dims=0) if negatives else None  # (B, [L,] Dq)
    negative_mask = None if query_mask is None or not negatives else query_mask.roll(1, dims=0)
    return model(batch.visual, audio, query, batch.video_mask, negative, query_mask, negative_mask)


@torch.no_grad()
def predict_batches(model: TVSumQuag, batches: Sequence[TVSumBatch]) -> dict[str, list[float]]:
    """Saliency logits per clip, ``{video_id: [score per 2-s clip]}``, of single-video batches (no padding)."""
    was_training = model.training
    model.eval()
    out: dict[str, list[float]] = {}
    for batch in batches:
        scores = forward_batch(model, batch).scores[0]  # (T,)
        out[batch.video_ids[0]] = [float(x) for x in scores.tolist()]
    model.train(was_training)
    return out


def predict_saliency(model: TVSumQuag, videos: Sequence[TVSumVideo]) -> dict[str, list[float]]:
    """Saliency logits per clip, ``{video_id: [score per 2-s clip]}``, one video at a time (no padding)."""
    return predict_batches(model, [collate_videos([v]) for v in videos])


def evaluate_map(predictions: dict[str, list[float]], videos: Sequence[TVSumVideo]) -> float:
    """Top-5 mAP in percent of ``predictions`` on ``videos``."""
    return 100.0 * top5_map(
        {v.video_id: np.asarray(predictions[v.video_id]) for v in videos},
        {v.video_id: v.annotations for v in videos},
    )


def train_category(
    cfg: TVSumConfig,
    train_videos: Sequence[TVSumVideo],
    test_videos: Sequence[TVSumVideo],
    seed: int,
    category: str = "",
    progress: ProgressCallback | None = None,
    keep_eval_predictions: bool = False,
) -> CategoryResult:
    """Train a fresh model on ``train_videos`` and score ``test_videos`` every ``eval_every`` epochs and at the end.

    Batches are built once: the test videos, and the training videos when one batch holds them all (an epoch
    then only reorders the padded batch, the same tensors as collating in that order).

    Args:
        cfg: Experiment config (model and train sections are used).
        train_videos: Training videos of one category.
        test_videos: Its test video(s).
        seed: Seeds initialisation, video order and dropout.
        category: Label stored in the result.
        progress: Optional per-epoch callback.
        keep_eval_predictions: Keep the predictions of every evaluation (``eval_predictions``).

    Returns:
        The :class:`CategoryResult` (mAPs in percent).
    """
    start = time.perf_counter()
    t = cfg.train
    seed_everything(seed)
    model = TVSumQuag(cfg.model)
    optimizer = build_optimizer(model, t.lr, t.weight_decay)
    steps_per_epoch = -(-len(train_videos) // t.batch_size)
    scheduler = None
    if t.lr_schedule == "linear":
        scheduler = build_scheduler(optimizer, t.epochs * steps_per_epoch, t.warmup_ratio)
    # the evaluated weights: the model's own, or their moving average (training is the same either way)
    averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(t.ema_decay)) if t.ema_decay > 0 else None
    evaluated = model if averaged is None else cast(TVSumQuag, averaged.module)
    weights = loss_weights(cfg)
    generator = np.random.default_rng(seed)
    whole = collate_videos(train_videos) if t.batch_size >= len(train_videos) else None
    test_batches = [collate_videos([v]) for v in test_videos]
    curve: list[list[float]] = []
    eval_predictions: list[dict[str, list[float]]] = []
    best_map, best_epoch, best_pred = -1.0, 0, {}
    pred: dict[str, list[float]] = {}
    last_terms: dict[str, float] = {}
    model.train()
    for epoch in range(1, t.epochs + 1):
        order = generator.permutation(len(train_videos))
        for i in range(0, len(order), t.batch_size):
            if whole is not None:
                batch = whole.select(order)
            else:
                batch = collate_videos([train_videos[j] for j in order[i : i + t.batch_size]])
            # QD-DETR's negative pair: each video under another video's title (needs two distinct videos).
            use_negative = weights.negative_query > 0 and len(batch.video_ids) > 1
            out = forward_batch(model, batch, negatives=use_negative)
            terms = saliency_loss(
                out.scores, batch.saliency, batch.video_mask, weights, out.msp_loss, out.negative_scores
            )
            optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            if t.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            if averaged is not None:
                averaged.update_parameters(model)
            last_terms = {k: float(v.detach()) for k, v in terms.items()}
        latest = float("nan")
        if epoch % t.eval_every == 0 or epoch == t.epochs:
            pred = predict_batches(evaluated, test_batches)
            latest = evaluate_map(pred, test_videos)
            curve.append([epoch, latest])
            if keep_eval_predictions:
                eval_predictions.append(pred)
            if latest > best_map:  # strictly better: the earliest best evaluation is kept
                best_map, best_epoch, best_pred = latest, epoch, pred
        if progress is not None:
            progress(epoch, {"loss": last_terms.get("total", float("nan")), "map": latest})
    final_pred = pred  # the last epoch is always evaluated, and evaluation leaves the model unchanged
    return CategoryResult(
        category=category,
        seed=seed,
        fingerprint=cfg.training_fingerprint(),
        protocol_map=best_map,
        best_epoch=best_epoch,
        fixed_map=evaluate_map(final_pred, test_videos),
        epochs=t.epochs,
        wall_s=time.perf_counter() - start,
        curve=curve,
        final_losses=last_terms,
        predictions_fixed=final_pred,
        predictions_protocol=best_pred,
        eval_predictions=eval_predictions,
    )


def _load_result(path: Path, fingerprint: str) -> CategoryResult | None:
    """A finished (seed, category) result with the same fingerprint, or None."""
    if not path.is_file():
        return None
    try:
        result = CategoryResult.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as e:
        logger.warning("ignoring unreadable %s (%s); retraining", path, e)
        return None
    return result if result.fingerprint == fingerprint else None


def train_job(
    cfg: TVSumConfig,
    category: str,
    train_videos: list[TVSumVideo],
    test_videos: list[TVSumVideo],
    seed: int,
    queue: Any | None,
) -> dict[str, Any]:
    """One (seed, category) in a worker process; epochs are reported through ``queue`` as (category, epoch, info)."""

    def report(epoch: int, info: dict[str, float]) -> None:
        if queue is not None:
            queue.put((category, epoch, info))

    with torch_threads(cfg.train.num_threads):
        return train_category(cfg, train_videos, test_videos, seed, category=category, progress=report).to_dict()


class _SeedProgress:
    """One tqdm bar over all epochs of a seed's pending categories, with the latest loss and mAP of each."""

    def __init__(self, total: int, seed: int, enabled: bool) -> None:
        self.bar = None
        self.latest: dict[str, str] = {}
        self.maps: dict[str, float] = {}
        if enabled and total:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=f"seed {seed}", unit="ep", dynamic_ncols=True)

    def update(self, category: str, epoch: int, info: dict[str, float]) -> None:
        if info["map"] == info["map"]:  # not NaN: an evaluation epoch
            self.maps[category] = info["map"]
        self.latest[category] = f"{category} ep {epoch} loss {info['loss']:.2f} mAP {self.maps.get(category, 0):.1f}"
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(" | ".join(self.latest.values()))

    def finish(self, category: str) -> None:
        self.latest.pop(category, None)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_jobs(
    cfg: TVSumConfig, videos: dict[str, TVSumVideo], seed: int, categories: list[str], bar: _SeedProgress
) -> dict[str, CategoryResult]:
    """Train ``categories`` in-process (``workers = 1``) or in a pool of spawned processes; write each result."""
    seed_dir = cfg.run_dir / f"seed_{seed}"
    results: dict[str, CategoryResult] = {}

    def jobs_args(cat: str) -> tuple[list[TVSumVideo], list[TVSumVideo]]:
        split = TVSUM_SPLITS[cat]
        return [videos[v] for v in split["train"]], [videos[v] for v in split["test"]]

    def record(result: CategoryResult) -> None:
        atomic_write_json(seed_dir / f"{result.category}.json", result.to_dict())
        bar.finish(result.category)
        logger.info(
            "seed %d %s: protocol %.2f (epoch %d), fixed %.2f, %.0f s",
            seed,
            result.category,
            result.protocol_map,
            result.best_epoch,
            result.fixed_map,
            result.wall_s,
        )
        results[result.category] = result

    if cfg.train.workers == 1 or len(categories) == 1:
        with torch_threads(cfg.train.num_threads):
            for cat in categories:
                train_v, test_v = jobs_args(cat)

                def on_epoch(epoch: int, info: dict[str, float], cat: str = cat) -> None:
                    bar.update(cat, epoch, info)

                record(train_category(cfg, train_v, test_v, seed, category=cat, progress=on_epoch))
        return results

    import multiprocessing as mp
    import queue as queue_lib
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    # Longest categories first, so the last worker does not finish alone on a long one.
    def cost(cat: str) -> int:
        train_v, test_v = jobs_args(cat)
        return len(train_v) * max(v.num_clips for v in train_v)

    ordered = sorted(categories, key=cost, reverse=True)
    ctx = mp.get_context("spawn")  # fork after torch has started its thread pool can deadlock
    with ctx.Manager() as manager, ProcessPoolExecutor(cfg.train.workers, mp_context=ctx) as pool:
        events = manager.Queue()
        pending = {pool.submit(train_job, cfg, cat, *jobs_args(cat), seed, events) for cat in ordered}

        def drain() -> None:
            while True:
                try:
                    cat, epoch, info = events.get_nowait()
                except queue_lib.Empty:
                    return
                bar.update(cat, epoch, info)

        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            drain()
            for future in done:
                record(CategoryResult.from_dict(future.result()))
        drain()
    return results


def _previous_elapsed(path: Path, fingerprint: str, categories: list[str]) -> float | None:
    """``wall_s_elapsed`` of an earlier ``results.json`` with the same fingerprint and categories, else None."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if old.get("fingerprint") != fingerprint or list(old.get("protocol", {})) != categories:
        return None
    value = old.get("wall_s_elapsed")
    return float(value) if isinstance(value, (int, float)) else None


def run_seed(
    cfg: TVSumConfig, videos: dict[str, TVSumVideo], seed: int, progress: bool = True
) -> tuple[dict[str, CategoryResult], float | None]:
    """Every category of ``cfg.data.categories`` for one seed; finished categories are reused.

    Returns:
        category -> result, and the wall time of the seed in seconds (None when some categories were reused,
        so the time would not be a full run's); also writes ``seed_<s>/`` (see the module docstring).
    """
    start = time.perf_counter()
    seed_dir = cfg.run_dir / f"seed_{seed}"
    fingerprint = cfg.training_fingerprint()
    categories = list(cfg.data.categories)
    results: dict[str, CategoryResult] = {}
    for cat in categories:
        done = _load_result(seed_dir / f"{cat}.json", fingerprint)
        if done is not None:
            results[cat] = done
    if results:
        logger.info("seed %d: reusing %s", seed, ", ".join(results))
    todo = [c for c in categories if c not in results]
    bar = _SeedProgress(len(todo) * cfg.train.epochs, seed, progress)
    try:
        results.update(_run_jobs(cfg, videos, seed, todo, bar))
    finally:
        bar.close()
    ordered = {c: results[c] for c in categories}
    elapsed = time.perf_counter() - start if len(todo) == len(categories) else None
    if not todo:  # nothing ran: keep the wall time of the run that produced these results, if it was whole
        elapsed = _previous_elapsed(seed_dir / "results.json", fingerprint, categories)
    atomic_write_json(
        seed_dir / "results.json",
        {
            "seed": seed,
            "fingerprint": fingerprint,
            "protocol": {c: r.protocol_map for c, r in ordered.items()},
            "fixed": {c: r.fixed_map for c, r in ordered.items()},
            "best_epoch": {c: r.best_epoch for c, r in ordered.items()},
            "wall_s": {c: r.wall_s for c, r in ordered.items()},
            "wall_s_elapsed": elapsed,
            "workers": cfg.train.workers,
            "num_threads": cfg.train.num_threads,
        },
    )
    for kind in ("fixed", "protocol"):
        merged: dict[str, list[float]] = {}
        for r in ordered.values():
            merged.update(getattr(r, f"predictions_{kind}"))
        atomic_write_json(seed_dir / f"predictions_{kind}.json", merged, indent=None)
    return ordered, elapsed


@dataclass
class TVSumRun:
    """Everything :func:`run_tvsum` produced.

    Attributes:
        results: seed -> category -> result.
        wall_s: seed -> wall time of the seed's full run in seconds (None if it was resumed).
        summary: The content of ``summary.json`` (see :func:`quag.tvsum.table.write_summary`).
    """

    results: dict[int, dict[str, CategoryResult]]
    wall_s: dict[int, float | None]
    summary: dict[str, Any]


def run_tvsum(cfg: TVSumConfig, progress: bool = True) -> TVSumRun:
    """The whole experiment: load the features once, run every seed, write the summary and the table."""
    from quag.tvsum.table import annotator_mean_reference, write_summary

    root = resolve_tvsum_dir(cfg.data.root)
    videos = load_tvsum(
        root, cfg.data.categories, normalize=cfg.data.normalize_features, load_audio=cfg.model.use_audio
    )
    logger.info("TVSum: %d videos from %s", len(videos), root)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cfg.run_dir / "config.yaml", dump_tvsum_config(cfg))
    results: dict[int, dict[str, CategoryResult]] = {}
    wall: dict[int, float | None] = {}
    for seed in cfg.train.seeds:
        results[seed], wall[seed] = run_seed(cfg, videos, seed, progress=progress)
    references = {"Annotator mean (oracle, reads test labels)": annotator_mean_reference(videos)}
    return TVSumRun(results, wall, write_summary(cfg, results, wall, references))
