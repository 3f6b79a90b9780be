"""The TVSum protocol run behind ``benchmarks/tvsum_protocol.py`` and ``benchmarks/tvsum_screen.py``.

One job per (seed, category): train on the category's 4 training videos, evaluate the test video every
``eval_every`` epochs, and keep three numbers (top-5 mAP, %), each with its predictions:

- **protocol**: the maximum over the test evaluations (QD-DETR's ``train.py`` keeps the best checkpoint on the
  test video): model selection on the test labels;
- **fixed**: the evaluation after the last epoch;
- **label-free**: chosen without test labels, by leave-one-training-video-out validation
  (``benchmarks/tvsum_cv.py``), either given in advance or read from the CV result: the evaluation at one epoch, or
  the average of the evaluations from a start epoch to an end epoch (each evaluation's scores standardised over
  the video's clips first, :func:`average_evaluations`). It is the number to compare systems with.

Layout of ``out_dir`` (every file written atomically; a job's JSON is written last, so its presence means the job
finished, and a rerun skips it when its fingerprint matches)::

    config.yaml                          the resolved config
    jobs/seed_<s>/<CAT>.json             curve [[epoch, mAP]], protocol / fixed, wall seconds, predictions
    jobs/seed_<s>/<CAT>.evals.npz        the test predictions at every evaluation (float32, lossless)
    predictions/seed_<s>/<rule>.json     {video_id: [score per 2-s clip]}, rule = protocol, fixed, label_free
    summary.json, table.md               mean +- std over seeds per category and on average
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quag.io import atomic_path, atomic_write_json, atomic_write_text
from quag.tvsum.config import TVSUM_CATEGORIES, TVSumConfig, dump_tvsum_config
from quag.tvsum.data import TVSUM_SPLITS, TVSumVideo, load_tvsum, resolve_tvsum_dir
from quag.tvsum.table import PAPER_TABLE5, annotator_mean_reference, mean_std_cell, summarize_scores
from quag.tvsum.train import evaluate_map, torch_threads, train_category

logger = logging.getLogger(__name__)

RULES: tuple[str, ...] = ("protocol", "fixed", "label_free")
"""The three selection rules, in table order."""

LABEL_FREE_KINDS: tuple[str, ...] = ("epoch", "average", "best")
"""What :func:`label_free_from_cv` can take from a CV result."""

CAVEAT = (
    "The protocol maximum selects the epoch on the test video itself (the peers' practice, and how the paper's "
    "rows were obtained); the label-free number picks its epoch (or the window of epochs it averages) without "
    "test labels, by leave-one-training-video-out validation, and is the one to compare systems with."
)


@dataclass
class LabelFreeRule:
    """How the label-free number is chosen.

    Attributes:
        epoch: The epoch whose test evaluation is reported, or the last one averaged.
        source: Human-readable origin, e.g. ``"--label-free-epoch 45"`` or ``"CV runs/tvsum/cv/base.json"``.
        start: When set, the number is that of the average of the evaluations at epochs ``start`` to ``epoch``
            (:func:`average_evaluations`) instead of one evaluation.
    """

    epoch: int
    source: str
    start: int | None = None

    def describe(self) -> str:
        if self.start is None:
            return f"epoch {self.epoch}"
        return f"mean of the standardised evaluations at epochs {self.start}-{self.epoch}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"epoch": self.epoch, "source": self.source}
        return out if self.start is None else {**out, "start": self.start}


def average_evaluations(scores: np.ndarray) -> np.ndarray:
    """Average a video's predictions over evaluations: ``scores`` (evaluations, clips) -> (clips,).

    Each evaluation's scores are standardised over the clips first (zero mean, unit standard deviation; a
    constant row becomes zeros), so every evaluation weighs the same whatever the scale of its logits; top-5 mAP
    reads only the order of the clips.
    """
    rows = np.asarray(scores, dtype=np.float64)
    centred = rows - rows.mean(axis=1, keepdims=True)
    std = centred.std(axis=1, keepdims=True)
    return (centred / np.where(std > 0, std, 1.0)).mean(axis=0)


def label_free_from_cv(path: str | Path, cfg: TVSumConfig, kind: str = "epoch") -> LabelFreeRule:
    """The rule a leave-one-out run (``benchmarks/tvsum_cv.py`` output) of the same setting chose.

    Args:
        path: The CV result.
        cfg: The setting the rule is for.
        kind: ``"epoch"``, its best single epoch; ``"average"``, its best averaging window; ``"best"``, whichever
            of the two has the higher mean validation mAP (the single epoch on a tie).

    Raises:
        ValueError: the CV ran another setting (its fingerprint, the number of epochs left aside, differs), or
            has no averaging result for ``kind="average"`` or ``"best"``.
    """
    data = json.loads(Path(path).read_text())
    if kind not in LABEL_FREE_KINDS:
        raise ValueError(f"label-free kind {kind!r}: choose epoch, average or best")
    if kind != "epoch" and "average" not in data:
        raise ValueError(f"{path} has no 'average' result (an older CV file): rerun benchmarks/tvsum_cv.py")
    if kind == "best":
        kind = "average" if float(data["average"]["mean_map"]) > float(data["best_mean_map"]) else "epoch"
    if kind == "average":
        start, epoch = int(data["average"]["start_epoch"]), int(data["average"]["end_epoch"])
    else:
        start, epoch = None, int(data["best_epoch"])
    mine = cfg.setting_fingerprint()
    theirs = data.get("setting_fingerprint")
    if theirs is None:
        logger.warning("%s has no setting_fingerprint (older CV file): cannot check it ran this setting", path)
        return LabelFreeRule(epoch, f"CV {path} (best epoch {epoch}; setting unchecked)", start)
    if theirs != mine:
        raise ValueError(
            f"{path} was run with another setting (fingerprint {theirs}, this config {mine}): run the CV with "
            "the same --config and overrides, or pass --label-free-epoch"
        )
    if start is None:
        return LabelFreeRule(epoch, f"CV {path} (best mean validation mAP at epoch {epoch})")
    return LabelFreeRule(epoch, f"CV {path} (best mean validation mAP averaging epochs {start}-{epoch})", start)


def job_path(out_dir: Path, seed: int, category: str) -> Path:
    return out_dir / "jobs" / f"seed_{seed}" / f"{category}.json"


def evals_path(out_dir: Path, seed: int, category: str) -> Path:
    return out_dir / "jobs" / f"seed_{seed}" / f"{category}.evals.npz"


def run_job(
    cfg: TVSumConfig,
    category: str,
    train_videos: list[TVSumVideo],
    test_videos: list[TVSumVideo],
    seed: int,
    out_dir: Path,
) -> dict[str, Any]:
    """Train one (seed, category), write its evaluations and then its JSON; returns the JSON content."""
    with torch_threads(cfg.train.num_threads):
        result = train_category(cfg, train_videos, test_videos, seed, category=category, keep_eval_predictions=True)
    arrays = {"epochs": np.array([int(e) for e, _ in result.curve])}
    for v in test_videos:  # float32 logits stored as float32: lossless
        arrays[v.video_id] = np.array([p[v.video_id] for p in result.eval_predictions], dtype=np.float32)
    with atomic_path(evals_path(out_dir, seed, category)) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)  # type: ignore[arg-type]
    record = {**result.to_dict(), "eval_every": cfg.train.eval_every}
    atomic_write_json(job_path(out_dir, seed, category), record)
    return record


def load_job(out_dir: Path, seed: int, category: str, fingerprint: str) -> dict[str, Any] | None:
    """A finished job with ``fingerprint`` (and its evaluations file), else None."""
    path = job_path(out_dir, seed, category)
    if not path.is_file() or not evals_path(out_dir, seed, category).is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except ValueError:
        logger.warning("ignoring unreadable %s; rerunning the job", path)
        return None
    return record if record.get("fingerprint") == fingerprint else None


def predictions_at(out_dir: Path, seed: int, category: str, epoch: int) -> dict[str, list[float]]:
    """The job's test predictions at evaluation ``epoch``."""
    with np.load(evals_path(out_dir, seed, category)) as z:
        epochs = [int(e) for e in z["epochs"]]
        if epoch not in epochs:
            raise ValueError(f"epoch {epoch} was not evaluated (evaluations at {epochs[0]}, ..., {epochs[-1]})")
        i = epochs.index(epoch)
        return {k: [float(x) for x in z[k][i]] for k in z.files if k != "epochs"}


def label_free_predictions(out_dir: Path, seed: int, category: str, rule: LabelFreeRule) -> dict[str, list[float]]:
    """The job's test predictions under ``rule``: one evaluation's, or the average of a window of them."""
    if rule.start is None:
        return predictions_at(out_dir, seed, category, rule.epoch)
    with np.load(evals_path(out_dir, seed, category)) as z:
        epochs = z["epochs"]
        window = (epochs >= rule.start) & (epochs <= rule.epoch)
        if not window.any():
            raise ValueError(f"no evaluation between epochs {rule.start} and {rule.epoch} in {category} seed {seed}")
        return {k: [float(x) for x in average_evaluations(z[k][window])] for k in z.files if k != "epochs"}


def label_free_map(
    out_dir: Path,
    record: dict[str, Any],
    rule: LabelFreeRule,
    test_videos: list[TVSumVideo],
    predictions: dict[str, list[float]] | None = None,
) -> float:
    """Test mAP of a job under ``rule``: one evaluation's is read from its curve, an average is scored from
    ``predictions`` (its :func:`label_free_predictions`, loaded when not given)."""
    if rule.start is None:
        return map_at(record, rule.epoch)
    if predictions is None:
        predictions = label_free_predictions(out_dir, int(record["seed"]), record["category"], rule)
    return evaluate_map(predictions, test_videos)


def map_at(record: dict[str, Any], epoch: int) -> float:
    """Test mAP of a job at evaluation ``epoch``."""
    for e, m in record["curve"]:
        if int(e) == epoch:
            return float(m)
    raise ValueError(f"epoch {epoch} was not evaluated in {record['category']} seed {record['seed']}")


def check_label_free_epoch(rule: LabelFreeRule | None, cfg: TVSumConfig) -> None:
    """The label-free epochs must be evaluations (a multiple of ``eval_every``, or the last epoch), start first."""
    if rule is None:
        return
    t = cfg.train
    for epoch in (rule.epoch,) if rule.start is None else (rule.start, rule.epoch):
        if not 1 <= epoch <= t.epochs or (epoch % t.eval_every and epoch != t.epochs):
            raise ValueError(
                f"label-free epoch {epoch} is not evaluated: it must be a multiple of eval_every ({t.eval_every}) "
                f"up to {t.epochs}"
            )
    if rule.start is not None and rule.start > rule.epoch:
        raise ValueError(f"label-free window {rule.start}-{rule.epoch} ends before it starts")


def count_parameters(cfg: TVSumConfig) -> int:
    from quag.tvsum.model import TVSumQuag

    return sum(p.numel() for p in TVSumQuag(cfg.model).parameters())


def run_protocol(
    cfg: TVSumConfig,
    out_dir: Path,
    label_free: LabelFreeRule | None = None,
    log: Callable[[str], None] = print,
    videos: dict[str, TVSumVideo] | None = None,
) -> dict[str, Any]:
    """Every (seed, category) of ``cfg`` (seeds ``train.seeds``, categories ``data.categories``), then the summary.

    Seeds run one after the other, each seed's categories on ``train.workers`` spawned processes (longest
    first), so a seed's elapsed time is comparable with ``quag tvsum``'s; finished jobs are skipped.

    Returns:
        The content of ``summary.json``.
    """
    check_label_free_epoch(label_free, cfg)
    categories, seeds = list(cfg.data.categories), list(cfg.train.seeds)
    if videos is None:
        root = resolve_tvsum_dir(cfg.data.root)
        videos = load_tvsum(root, categories, cfg.data.normalize_features, load_audio=cfg.model.use_audio)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "config.yaml", dump_tvsum_config(cfg))
    fingerprint = cfg.training_fingerprint()

    def split(cat: str) -> tuple[list[TVSumVideo], list[TVSumVideo]]:
        return [videos[v] for v in TVSUM_SPLITS[cat]["train"]], [videos[v] for v in TVSUM_SPLITS[cat]["test"]]

    def cost(cat: str) -> int:  # padded clips per step
        train_v, _ = split(cat)
        return len(train_v) * max(v.num_clips for v in train_v)

    records: dict[int, dict[str, dict[str, Any]]] = {s: {} for s in seeds}
    todo: dict[int, list[str]] = {}
    for s in seeds:
        for cat in categories:
            done = load_job(out_dir, s, cat, fingerprint)
            if done is not None:
                records[s][cat] = done
        todo[s] = sorted((c for c in categories if c not in records[s]), key=cost, reverse=True)
        if records[s]:
            log(f"seed {s}: {len(records[s])} finished job(s) found, skipped: {', '.join(records[s])}")
    total = sum(len(v) for v in todo.values())
    finished: list[float] = []
    elapsed: dict[int, float | None] = {}

    def report(record: dict[str, Any]) -> None:
        finished.append(float(record["wall_s"]))
        left = total - len(finished)
        eta = left * (sum(finished) / len(finished)) / max(1, min(cfg.train.workers, left or 1))
        lf = ""
        if label_free is not None:
            value = label_free_map(out_dir, record, label_free, split(record["category"])[1])
            lf = f", label-free {value:.1f} ({label_free.describe()})"
        log(
            f"[{len(finished)}/{total}] seed {record['seed']} {record['category']}: protocol "
            f"{record['protocol_map']:.1f} (ep {record['best_epoch']}), fixed {record['fixed_map']:.1f}{lf} | "
            f"{record['wall_s']:.0f} s | ETA {eta / 60:.1f} min"
        )

    pool = None
    if total and cfg.train.workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # spawn: fork after torch has started its thread pool can deadlock
        pool = ProcessPoolExecutor(cfg.train.workers, mp_context=mp.get_context("spawn"))
    try:
        for s in seeds:
            start = time.perf_counter()
            if pool is None:  # run_job sets the thread count
                for cat in todo[s]:
                    records[s][cat] = run_job(cfg, cat, *split(cat), s, out_dir)
                    report(records[s][cat])
            else:
                from concurrent.futures import as_completed

                futures = [pool.submit(run_job, cfg, cat, *split(cat), s, out_dir) for cat in todo[s]]
                for future in as_completed(futures):
                    record = future.result()
                    records[s][record["category"]] = record
                    report(record)
            # a seed's elapsed time is recorded only when all its jobs ran now (a resumed seed has none)
            elapsed[s] = time.perf_counter() - start if len(todo[s]) == len(categories) else None
    finally:
        if pool is not None:
            pool.shutdown()
    previous = _previous_summary(out_dir, fingerprint)
    for s in seeds:  # a fully reused seed keeps the elapsed time of the run that produced it
        if elapsed[s] is None and not todo[s]:
            elapsed[s] = previous.get(str(s))
    references = {"Annotator mean (oracle, reads test labels)": annotator_mean_reference(videos)}
    tests = {c: split(c)[1] for c in categories}
    return write_protocol_summary(cfg, out_dir, records, elapsed, label_free, tests, references)


def _previous_summary(out_dir: Path, fingerprint: str) -> dict[str, float | None]:
    try:
        old = json.loads((out_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    if old.get("fingerprint") != fingerprint:
        return {}
    return {s: w.get("elapsed_s") for s, w in old.get("wall_s", {}).items()}


def write_protocol_summary(
    cfg: TVSumConfig,
    out_dir: Path,
    records: dict[int, dict[str, dict[str, Any]]],
    elapsed: dict[int, float | None],
    label_free: LabelFreeRule | None,
    test_videos: dict[str, list[TVSumVideo]],
    references: dict[str, dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Prediction files per seed and rule, ``summary.json`` and ``table.md``; returns the summary.

    ``test_videos`` maps each category to its test videos (the label-free average is scored here).
    """
    per_seed: dict[str, dict[int, dict[str, float]]] = {r: {} for r in RULES}
    for s, cats in sorted(records.items()):
        per_seed["protocol"][s] = {c: float(r["protocol_map"]) for c, r in cats.items()}
        per_seed["fixed"][s] = {c: float(r["fixed_map"]) for c, r in cats.items()}
        preds: dict[str, dict[str, list[float]]] = {r: {} for r in RULES}
        for c, r in cats.items():
            preds["protocol"].update(r["predictions_protocol"])
            preds["fixed"].update(r["predictions_fixed"])
            if label_free is not None:
                lf = label_free_predictions(out_dir, s, c, label_free)
                preds["label_free"].update(lf)
                per_seed["label_free"].setdefault(s, {})[c] = label_free_map(out_dir, r, label_free, test_videos[c], lf)
        for rule, p in preds.items():
            if p:
                atomic_write_json(out_dir / "predictions" / f"seed_{s}" / f"{rule}.json", p, indent=None)
    rules = {r: summarize_scores(v) for r, v in per_seed.items() if v}
    wall = {
        str(s): {"elapsed_s": elapsed.get(s), "job_s_sum": sum(float(r["wall_s"]) for r in cats.values())}
        for s, cats in sorted(records.items())
    }
    summary = {
        "name": cfg.name,
        "fingerprint": cfg.training_fingerprint(),
        "epochs": cfg.train.epochs,
        "eval_every": cfg.train.eval_every,
        "seeds": sorted(records),
        "categories": list(cfg.data.categories),
        "workers": cfg.train.workers,
        "num_threads": cfg.train.num_threads,
        "params": count_parameters(cfg),
        "label_free_rule": None if label_free is None else label_free.to_dict(),
        "rules": rules,
        "per_seed": {r: {str(s): v for s, v in d.items()} for r, d in per_seed.items()},
        "wall_s": wall,
        "references": dict(references or {}),
        "caveat": CAVEAT,
    }
    atomic_write_json(out_dir / "summary.json", summary)
    atomic_write_text(out_dir / "table.md", protocol_markdown(summary))
    return summary


def rule_label(rule: str, summary: dict[str, Any]) -> str:
    if rule == "protocol":
        return f"max over the test evaluations every {summary['eval_every']} epochs"
    if rule == "fixed":
        return f"epoch {summary['epochs']}"
    lf = summary["label_free_rule"]
    return "not computed" if lf is None else f"{LabelFreeRule(**lf).describe()}, from {lf['source']}"


def protocol_markdown(summary: dict[str, Any]) -> str:
    """The table (paper's Table 5 rows, reference rows, our three rows) with the rules and the caveat."""
    cols = [*TVSUM_CATEGORIES, "Avg."]
    lines = ["| Model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, row in {**PAPER_TABLE5, **summary.get("references", {})}.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.1f}" if c in row else "-" for c in cols) + " |")
    names = {"protocol": "protocol max", "fixed": "fixed last epoch", "label_free": "label-free"}
    for rule in RULES:
        stats = summary["rules"].get(rule)
        if stats is None:
            continue
        cells = [mean_std_cell(stats[c]) if c in stats else "-" for c in cols]
        lines.append(f"| **QUAG (ours, {names[rule]})** | " + " | ".join(cells) + " |")
    seeds = ", ".join(str(s) for s in summary["seeds"])
    walls = ", ".join(
        f"seed {s}: "
        + ("resumed, no single run" if w["elapsed_s"] is None else f"{w['elapsed_s'] / 60:.1f} min")
        + f" ({w['job_s_sum'] / 60:.1f} min summed over its jobs)"
        for s, w in summary["wall_s"].items()
    )
    rules = "\n".join(f"- {names[r]}: {rule_label(r, summary)}" for r in RULES)
    return (
        f"Run `{summary['name']}`: {summary['epochs']} epochs, test evaluation every {summary['eval_every']}, seeds "
        f"{seeds}; top-5 mAP (%), mean ± sample std over seeds; {summary['params'] / 1e6:.2f} M parameters.\n\n"
        + "\n".join(lines)
        + f"\n\nSelection rules:\n\n{rules}\n\n{summary['caveat']}\n\n"
        + f"Wall time per seed ({summary['workers']} worker process(es) x {summary['num_threads']} thread(s); the "
        + "jobs of a seed run side by side, so their sum exceeds its wall time): "
        + walls
        + "\n"
    )
