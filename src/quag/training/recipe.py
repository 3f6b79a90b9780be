"""Multi-task training of QUAG or the Joint baseline: ``quag train CONFIG [key=value ...]``.

One loop, top to bottom: every step takes one single-task batch from :class:`~quag.data.multitask.MultiTaskLoader`
(a seeded, proportional interleave of the tasks), computes ``L_task + lambda * L_msp`` (Eq. 15), clips the
gradient norm, steps AdamW and the linear warm-up/decay schedule. Validation decodes the val split with the same
functions as ``quag infer`` and scores it with :mod:`quag.evaluation`; the best checkpoint is the one with the
highest ``val/mean_score`` (see :func:`~quag.evaluation.selection.selection_score`).

Run directory ``runs/<name>/``: ``config.yaml``, ``train.log``, ``metrics.jsonl``, ``checkpoints/{last,best}/``,
``predictions/val_*.json`` and ``val_predictions.jsonl`` of the best epoch, and ``train.lock`` while it runs.

Before it writes anything, a run reads and checks every file it will read (:mod:`quag.training.preflight`) and
claims its folder (:mod:`quag.training.run_folder`): one training at a time, a previous run is continued only
with ``resume`` and replaced only with ``overwrite``, ``config.yaml`` is written once the checks have passed.

Several processes: ``torchrun --nproc_per_node=N -m quag train CONFIG``. Ranks shard every task loader
(``DistributedSampler``, ``set_epoch`` each epoch), seed with ``seed + rank``, and share the task order; only rank
0 writes. Validation is sharded too and gathered on rank 0.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from quag.checkpoint import (
    CheckpointMeta,
    load_trainer_state,
    load_weights,
    read_checkpoint_info,
    recover_checkpoints,
    save_checkpoint,
)
from quag.config import ExperimentConfig, save_config
from quag.data.collate import trim_caption_padding
from quag.data.datasets import build_datasets, make_store
from quag.data.features import FeatureSpec
from quag.data.multitask import MultiTaskLoader
from quag.evaluation.selection import evaluate_task_predictions, selection_score
from quag.heap import trim_heap
from quag.inference.device import resolve_device, resolve_precision
from quag.inference.runner import TaskPredictions, merge_task_predictions, predict_task, video_records
from quag.io import atomic_write_json, atomic_write_jsonl
from quag.models import build_model
from quag.models.decoder_init import initialise_decoder
from quag.models.losses import total_loss
from quag.tasks import Task
from quag.training import distributed as D
from quag.training.optim import build_optimizer, build_scheduler
from quag.training.preflight import check_run_features, load_run_splits
from quag.training.run_folder import (
    METRICS,
    RunLock,
    RunLogHandler,
    append_metrics,
    check_reuse,
    clear_outputs,
    is_inside,
    read_metrics,
    rewind_metrics,
)

logger = logging.getLogger(__name__)


def check_model_matches_features(cfg: ExperimentConfig, spec: FeatureSpec) -> None:
    """The model's input widths must equal the feature files' (clear error naming the config key)."""
    pairs = [("visual_dim", spec.visual_dim), ("transcript_dim", spec.transcript_dim), ("query_dim", spec.query_dim)]
    bad = [
        f"model.{k}={getattr(cfg.model, k)} but the features have {v}" for k, v in pairs if getattr(cfg.model, k) != v
    ]
    if bad:
        simulated = bool(spec.simulated) or spec.visual_encoder.startswith("sim-")
        data, config = ("HiREST-sim", "configs/sim_quag_cpu.yaml") if simulated else ("these features", None)
        start = f"start from the config made for {data}: `quag train {config}`, or " if config else ""
        raise ValueError(
            f"{cfg.data.root}/feature_spec.json does not match the model: {'; '.join(bad)}. To train on {data}, "
            f"{start}set those keys (e.g. model.query_dim=384 for MiniLM queries)."
        )


def rng_state() -> dict[str, Any]:
    """This process's torch, NumPy and Python RNG states (saved per rank in ``trainer_state.pt``)."""
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    best_score: float | None
    val_metrics: dict[str, float] = field(default_factory=dict)
    losses: list[dict[str, float]] = field(default_factory=list)
    """Per-step losses (task, loss, task_loss, msp_loss) of this process, for tests and plots."""


class TrainRecipe:
    """Set up data, model and optimiser from an :class:`ExperimentConfig`, then :meth:`train`.

    Args:
        cfg: the resolved experiment config.
        resume: checkpoint folder to continue from (weights, optimizer, scheduler, RNG, position in the epoch).
        device: ``auto`` (CUDA if present), ``cpu`` or ``cuda[:i]``.
        progress: show a progress bar (rank 0).
        overwrite: replace a previous run in the run folder (its outputs are removed once every check passed).
    """

    def __init__(
        self,
        cfg: ExperimentConfig,
        resume: str | Path | None = None,
        device: str = "auto",
        progress: bool = True,
        overwrite: bool = False,
    ) -> None:
        self.cfg = cfg
        self.resume = Path(resume) if resume is not None else None
        self.device = resolve_device(device)
        self.progress = progress
        self.overwrite = overwrite
        self._lock: RunLock | None = None
        self._log_handler: logging.Handler | None = None
        self.log_rows = 0
        """Rows of ``metrics.jsonl`` so far (stored in every checkpoint, so that a resume can cut the file back)."""
        self._recovered: list[str] = []
        self._resume_meta: CheckpointMeta | None = None
        self._created_run_dir = False
        self._started = False

    # -- setup ---------------------------------------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.cfg
        self.dist = D.init_distributed(self.device)
        if self.dist.distributed and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        torch.manual_seed(cfg.train.seed + self.dist.rank)
        np.random.seed(cfg.train.seed + self.dist.rank)
        self.precision, self.precision_reason = resolve_precision(cfg.train.precision, self.device)
        self.run_dir = cfg.run_dir
        # 1. everything the run will read, checked before anything is written
        self.store = make_store(cfg.data)
        if cfg.model.visual_dim == 0:  # a speech-only model never reads frame files, whatever the root holds
            self.store.drop_visual()
        check_model_matches_features(cfg, self.store.spec)
        tasks = cfg.tasks
        train_videos, self.val_videos = load_run_splits(cfg)
        n_checked = check_run_features(cfg, self.store, train_videos, self.val_videos)
        self.train_sets = build_datasets(
            cfg.data, cfg.data.train_split, tasks, training=True, store=self.store, videos=train_videos
        )
        self.val_sets = build_datasets(
            cfg.data, cfg.data.val_split, tasks, training=False, store=self.store, videos=self.val_videos
        )
        # 2. the run folder: locked, tidied after a crash, reused only when asked
        self._on_main(self._claim_run_folder)
        self.loader = MultiTaskLoader(
            self.train_sets,
            cfg.train.batch_size,
            seed=cfg.train.seed,
            num_replicas=self.dist.world_size,
            rank=self.dist.rank,
            num_workers=cfg.data.num_workers,
            bucketing="none" if cfg.train.bucketing == "reference" else "length",
            lengths={t: ds.lengths() for t, ds in self.train_sets.items()},  # from the annotations: no file is read
            bucket_size=cfg.train.bucket_size,
        )
        self.steps_per_epoch = len(self.loader)
        self.total_steps = self.steps_per_epoch * cfg.train.epochs
        if cfg.train.max_steps:
            self.total_steps = min(self.total_steps, cfg.train.max_steps)
        self.raw_model = build_model(cfg.model).to(self.device)
        if self.resume is None:
            initialise_decoder(self.raw_model.decoder, cfg.model.decoder_init)
        self.optimizer = build_optimizer(self.raw_model, cfg.train.lr, cfg.train.weight_decay)
        self.scheduler = build_scheduler(self.optimizer, self.total_steps, cfg.train.warmup_ratio)
        self.step, self.epoch, self.step_in_epoch = 0, 0, 0
        self.best: float | None = None
        if self.resume is not None:
            self._load_resume()
        # 3. every check passed: only now is the run folder changed
        self._on_main(self._start_run_folder)
        self.model: torch.nn.Module = self.raw_model
        if self.dist.distributed:
            # single-task steps leave the other heads without gradients
            self.model = DistributedDataParallel(
                self.raw_model,
                find_unused_parameters=True,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
            )
        if self.dist.is_main:
            n = sum(p.numel() for p in self.raw_model.parameters() if p.requires_grad)
            logger.info(
                "run %s: %s, %d trainable parameters, %d steps/epoch x %d epochs (%d steps), world %d, %s, %s (%s)",
                cfg.name,
                cfg.model.arch,
                n,
                self.steps_per_epoch,
                cfg.train.epochs,
                self.total_steps,
                self.dist.world_size,
                self.device,
                self.precision,
                self.precision_reason,
            )
            logger.info("every feature file of both splits read and checked (%d examples)", n_checked)

    def _on_main(self, work: Any) -> None:
        """Run ``work`` on rank 0 only; an error there stops every rank (with its message on the others)."""
        error: Exception | None = None
        if self.dist.is_main:
            try:
                work()
            except Exception as e:
                error = e
        message = D.broadcast_object(None if error is None else f"{type(error).__name__}: {error}")
        if error is not None:
            raise error
        if message is not None:
            raise RuntimeError(f"rank 0 stopped the run: {message}")

    def _claim_run_folder(self) -> None:
        """Lock the run folder, tidy what a killed run left in it, and refuse to reuse it unless asked to."""
        self._created_run_dir = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._lock = RunLock.acquire(self.run_dir)
        self._recovered = recover_checkpoints(self.run_dir / "checkpoints")
        check_reuse(self.run_dir, self.resume, self.overwrite)

    def _start_run_folder(self) -> None:
        """Clear a replaced run, cut the metrics back to the resumed checkpoint, write the config, open the log."""
        self._started = True
        removed = clear_outputs(self.run_dir) if self.overwrite else []
        metrics = self.run_dir / METRICS
        dropped = 0
        meta = self._resume_meta
        if self.resume is not None and meta is not None and is_inside(self.resume, self.run_dir):
            _, dropped = rewind_metrics(metrics, meta.log_rows, meta.step)
        elif metrics.exists():  # a new run from another folder's checkpoint, or a folder with only a log
            metrics.unlink()
        self.log_rows = len(read_metrics(metrics))
        save_config(self.cfg, self.run_dir / "config.yaml")
        handler = RunLogHandler(self.run_dir / "train.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger("quag").addHandler(handler)
        self._log_handler = handler
        for line in self._recovered:
            logger.warning("%s", line)
        if removed:
            logger.info("--overwrite: removed the previous run's %s from %s", ", ".join(removed), self.run_dir)
        if dropped:
            logger.info("%s: dropped %d row(s) logged after the resumed checkpoint", metrics, dropped)

    def _load_resume(self) -> None:
        assert self.resume is not None
        cfg_ckpt, spec, meta = read_checkpoint_info(self.resume)
        self._resume_meta = meta
        self.store.spec.check_compatible(spec, what="features", other_what="checkpoint")
        if cfg_ckpt.model != self.cfg.model:
            raise ValueError(
                f"{self.resume}: the checkpoint's model config differs from this run's; resume with "
                f"the same model settings (checkpoint: {cfg_ckpt.model})"
            )
        load_weights(self.raw_model, self.resume)
        state = load_trainer_state(self.resume)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        rngs = state["rng"]
        set_rng_state(rngs[min(self.dist.rank, len(rngs) - 1)])
        self.step, self.epoch, self.step_in_epoch, self.best = (
            meta.step,
            meta.epoch,
            meta.step_in_epoch,
            meta.best_metric,
        )
        logger.info(
            "resumed from %s at step %d (epoch %d, step %d of it)",
            self.resume,
            self.step,
            self.epoch,
            self.step_in_epoch,
        )

    # -- checkpoints, logging ------------------------------------------------------------------------------
    def _save(self, name: str, metrics: dict[str, float] | None = None) -> None:
        rngs = D.all_gather_objects(rng_state())
        if not self.dist.is_main:
            return
        meta = CheckpointMeta(
            step=self.step,
            epoch=self.epoch,
            step_in_epoch=self.step_in_epoch,
            metrics=metrics or {},
            best_metric=self.best,
            log_rows=self.log_rows,
        )
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(), "rng": rngs}
        save_checkpoint(self.run_dir / "checkpoints" / name, self.raw_model, self.cfg, self.store.spec, meta, state)

    def _log(self, record: dict[str, Any]) -> None:
        if self.dist.is_main:
            append_metrics(self.run_dir / METRICS, record)
            self.log_rows += 1

    # -- validation ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> tuple[dict[str, float], dict[Task, TaskPredictions]]:
        """Decode the val split (sharded over ranks) and score it on rank 0."""
        preds: dict[Task, TaskPredictions] = {}
        for task, ds in self.val_sets.items():
            indices = list(range(self.dist.rank, len(ds), self.dist.world_size))
            mine = predict_task(self.raw_model, ds, self.cfg.eval, self.device, indices)
            preds[task] = merge_task_predictions(D.all_gather_objects(mine))
        self.raw_model.train()
        metrics: dict[str, float] = {}
        if self.dist.is_main:
            metrics = evaluate_task_predictions(
                {t: p.official for t, p in preds.items()}, self.val_videos, tuple(self.cfg.eval.val_caption_metrics)
            )
            metrics["mean_score"] = selection_score(metrics)
        return D.broadcast_object(metrics), preds

    def _write_predictions(self, preds: dict[Task, TaskPredictions]) -> None:
        if not self.dist.is_main:
            return
        split = self.cfg.data.val_split
        for task, p in preds.items():
            atomic_write_json(self.run_dir / "predictions" / f"{split}_{task}.json", p.official)
        atomic_write_jsonl(self.run_dir / "predictions" / f"{split}_predictions.jsonl", video_records(preds.values()))

    # -- the loop ------------------------------------------------------------------------------------------
    def train(self) -> TrainResult:
        cfg = self.cfg.train
        model = self.model
        model.train()
        autocast = (
            torch.autocast(self.device.type, dtype=torch.bfloat16)
            if self.precision == "bf16"
            else torch.autocast(self.device.type, enabled=False)
        )
        bar = None
        if self.progress and self.dist.is_main:
            from tqdm import tqdm

            bar = tqdm(total=self.total_steps, initial=self.step, unit="step", desc=self.cfg.name, dynamic_ncols=True)
        window: dict[str, list[float]] = defaultdict(list)
        result = TrainResult(self.run_dir, 0, self.best)
        t0 = time.time()
        done = self.step >= self.total_steps
        release_memory = cfg.release_memory and self.device.type == "cpu"
        while not done and self.epoch < cfg.epochs:
            self.loader.set_epoch(self.epoch, self.step_in_epoch)
            for task, batch in self.loader:
                batch = batch.to(self.device, non_blocking=True)
                if cfg.caption_loss_ignore_pad:
                    batch = trim_caption_padding(batch)  # exact: only [PAD] inputs and ignored targets are cut
                with autocast:
                    out = model(batch)
                    losses = total_loss(
                        task, out, batch, cfg.msp_loss_weight, cfg.caption_loss_ignore_pad, cfg.moment_loss
                    )
                self.optimizer.zero_grad(set_to_none=True)
                if release_memory:
                    trim_heap()  # the forward pass's freed temporaries, before backward allocates the gradients
                losses["loss"].backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                self.optimizer.step()
                self.scheduler.step()
                self.step += 1
                self.step_in_epoch += 1
                values = {k: float(v.detach()) for k, v in losses.items()}
                if not math.isfinite(values["loss"]):
                    raise RuntimeError(
                        f"loss became {values['loss']} at step {self.step} ({task}); lower train.lr or "
                        "check the features for extreme values"
                    )
                result.losses.append({"task": task, **values})  # type: ignore[dict-item]
                window[task].append(values["task_loss"])
                if "msp_loss" in values:
                    window["msp"].append(values["msp_loss"])
                if bar is not None:
                    bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                    summary = {k: float(np.mean(v)) for k, v in window.items()}
                    if bar is not None:
                        bar.set_postfix({k[:6]: f"{v:.3f}" for k, v in summary.items()})
                    self._log(
                        {
                            "step": self.step,
                            "epoch": self.epoch,
                            "lr": self.scheduler.get_last_lr()[0],
                            "time": round(time.time() - t0, 2),
                            **{f"train/{k}": v for k, v in summary.items()},
                        }
                    )
                    window.clear()
                # the last step's checkpoint is the one after the final validation: a run killed during that
                # validation resumes from an earlier step, where a checkpoint at the last step would skip it
                if cfg.save_every and self.step % cfg.save_every == 0 and self.step < self.total_steps:
                    self._save("last")
                if self.step >= self.total_steps:
                    done = True
                    break
            if self.step_in_epoch >= self.steps_per_epoch:
                self.epoch += 1
                self.step_in_epoch = 0
            last_epoch = done or self.epoch >= cfg.epochs
            if last_epoch or self.epoch % cfg.eval_every_epochs == 0:
                metrics, preds = self.validate()
                self._log({"step": self.step, "epoch": self.epoch, **{f"val/{k}": v for k, v in metrics.items()}})
                result.val_metrics = metrics
                score = metrics.get("mean_score", float("nan"))
                if self.dist.is_main:
                    logger.info(
                        "epoch %d step %d val: %s",
                        self.epoch,
                        self.step,
                        ", ".join(f"{k} {v:.2f}" for k, v in metrics.items()),
                    )
                if math.isfinite(score) and (self.best is None or score > self.best):
                    self.best = score
                    self._save("best", metrics)
                    self._write_predictions(preds)
            self._save("last", result.val_metrics)
        if bar is not None:
            bar.close()
        if self.dist.is_main and self.store.report.checked:  # fixes made by the length policy, counted
            report = self.store.report
            logger.info("features: %s", report.summary())
            atomic_write_json(
                self.run_dir / "feature_report.json",
                {"summary": report.summary(), "truncated": report.truncated, "padded": report.padded},
            )
        result.steps, result.best_score = self.step, self.best
        return result

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def cleanup(self) -> None:
        """Close the log file and release the run folder (safe after a failed or partial :meth:`setup`)."""
        handler = self._log_handler
        if handler is not None:
            logging.getLogger("quag").removeHandler(handler)
            handler.close()
            self._log_handler = None
        self._release_lock()
        if self._created_run_dir and not self._started:  # a run stopped by its checks leaves no empty folder
            with contextlib.suppress(OSError):
                self.run_dir.rmdir()


def train(
    cfg: ExperimentConfig,
    resume: str | Path | None = None,
    device: str = "auto",
    progress: bool = True,
    overwrite: bool = False,
) -> TrainResult:
    """Set up, train and clean up (the function behind ``quag train``).

    Args:
        cfg: the resolved experiment config.
        resume: checkpoint folder to continue from.
        device: ``auto``, ``cpu`` or ``cuda[:i]``.
        progress: show a progress bar.
        overwrite: replace a previous run in ``cfg.run_dir`` (without it, or ``resume``, a used folder is refused).
    """
    recipe = TrainRecipe(cfg, resume=resume, device=device, progress=progress, overwrite=overwrite)
    try:
        recipe.setup()
        return recipe.train()
    finally:
        recipe.cleanup()
