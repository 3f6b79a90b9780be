"""Length-bucketed batches (``MultiTaskLoader(bucketing="length")``) against unbucketed ones, at the paper setting.

    python benchmarks/bench_bucketing.py                                    # full HiREST-sim (built if missing)
    python benchmarks/bench_bucketing.py --data-root data/hirest-sim --steps 2   # a quick check on the small sim

Paper setting: the default ``ModelConfig()`` (its input widths set to the data root's features) and
``TrainConfig()``: batch 5, seed 2222, all three tasks, one epoch of the train split. Two measurements, in one run:

1. Padding, exact: over every batch of the epoch, padded frames / all frames (what the collate pads on: the
   video's frames for moment retrieval and segmentation, the window's rows for step captioning), from the
   annotations alone. No model is built for it.
2. Epoch time, a sampled estimate: a seeded uniform sample of ``--steps`` positions of the epoch. Both orders have
   the same task schedule, so a position is a step of the same task in both; at each position the training step
   (forward, loss, backward, gradient clip, AdamW) of each order is timed back to back, the first of the pair
   alternating, under the trainer's precision. Epoch time = mean step time x steps per epoch. Reading features is
   not timed (every example is read once per epoch in both orders). Both orders train the same model in turn.
   The standard error of each estimate is printed; when every task was sampled, a second estimate weights each
   task's mean step time by the task's batches per epoch.

A GEMM probe (median ms of a 1024 x 1024 matmul, fp32 and bf16) goes with the table, as a yardstick of how busy the
machine was. Writes ``benchmarks/results/bench_bucketing.{json,txt}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from quag.config import DataConfig, ModelConfig, TrainConfig
from quag.data.collate import collate, trim_caption_padding
from quag.data.datasets import TaskDataset, build_datasets, make_store
from quag.data.multitask import DEFAULT_BUCKET_SIZE, MultiTaskLoader
from quag.inference.device import resolve_precision
from quag.io import atomic_write_json, atomic_write_text, replace_marked_section
from quag.models import build_model
from quag.models.decoder_init import initialise_decoder
from quag.models.losses import total_loss
from quag.tasks import Task
from quag.training.optim import build_optimizer

sys.path.insert(0, str(Path(__file__).parent))
from probe import gemm_probe  # noqa: E402

MODES = ("none", "length")


def ensure_sim(root: Path, source: str) -> None:
    """Build the full HiREST-sim at ``root`` unless a dataset is there already."""
    if (root / "splits").is_dir():
        return
    argv = ["make-sim", "--full", "--source", source, "--out", str(root), "--no-progress"]
    print(f"{root} not found: building it with `quag {' '.join(argv)}`", flush=True)
    from quag.cli import main as quag_main

    if quag_main(argv) != 0:
        raise SystemExit(f"quag make-sim failed; build the data root by hand: quag {' '.join(argv)}")


def padding(plan: list[tuple[Task, list[int]]], lengths: dict[Task, list[int]]) -> dict[str, dict[str, float]]:
    """Padded and all frames of an epoch's batches, per task and in all."""
    padded: dict[str, int] = defaultdict(int)
    frames: dict[str, int] = defaultdict(int)
    for task, idx in plan:
        n = [lengths[task][i] for i in idx]
        for key in (task, "all"):
            padded[key] += len(n) * max(n) - sum(n)
            frames[key] += len(n) * max(n)
    return {k: {"padded": padded[k], "frames": frames[k], "fraction": padded[k] / frames[k]} for k in frames}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default="runs/bench_bucketing/hirest-sim-full", help="HiREST-sim root")
    parser.add_argument("--source", default="data/hirest", help="HiREST annotations, to build a missing data root")
    parser.add_argument("--steps", type=int, default=30, help="training steps timed per order")
    parser.add_argument("--epoch", type=int, default=0, help="epoch whose schedule is measured")
    parser.add_argument("--bucket-size", type=int, default=DEFAULT_BUCKET_SIZE, help="batches per mega-batch")
    parser.add_argument(
        "--precision", choices=("auto", "fp32", "bf16"), default="auto", help="as train.precision (auto: the trainer's)"
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", default="benchmarks/results/bench_bucketing", help="writes OUT.json and OUT.txt")
    parser.add_argument("--write-docs", action="store_true", help="regenerate the table in docs/benchmarks.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(args.data_root)
    ensure_sim(root, args.source)

    train = TrainConfig()
    data = DataConfig(root=str(root))
    tasks: list[Task] = list(train.tasks)  # type: ignore[arg-type]
    store = make_store(data)
    spec = store.spec
    model_cfg = dataclasses.replace(
        ModelConfig(), visual_dim=spec.visual_dim, transcript_dim=spec.transcript_dim, query_dim=spec.query_dim
    )
    sets: dict[Task, TaskDataset] = build_datasets(data, data.train_split, tasks, training=True, store=store)
    lengths = {t: ds.lengths() for t, ds in sets.items()}
    loaders = {
        mode: MultiTaskLoader(
            sets,
            train.batch_size,
            seed=train.seed,
            bucketing=mode,  # type: ignore[arg-type]
            lengths=lengths,
            bucket_size=args.bucket_size,
        )
        for mode in MODES
    }
    plans = {}
    for mode, loader in loaders.items():
        loader.set_epoch(args.epoch)
        plans[mode] = loader.plan()
    steps_per_epoch = len(plans["none"])
    assert [t for t, _ in plans["none"]] == [t for t, _ in plans["length"]], "bucketing changed the task schedule"
    pad = {mode: padding(plan, lengths) for mode, plan in plans.items()}

    # (2) sampled step times
    precision, why = resolve_precision(args.precision, torch.device("cpu"))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    torch.manual_seed(train.seed)
    model = build_model(model_cfg)
    initialise_decoder(model.decoder, model_cfg.decoder_init)
    model.train()
    optimizer = build_optimizer(model, train.lr, train.weight_decay)

    def step(task: Task, idx: list[int]) -> float:
        batch = collate([sets[task][i] for i in idx])
        if train.caption_loss_ignore_pad:
            batch = trim_caption_padding(batch)
        t0 = time.perf_counter()
        with autocast:
            out = model(batch)
            losses = total_loss(
                task, out, batch, train.msp_loss_weight, train.caption_loss_ignore_pad, train.moment_loss
            )
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)
        optimizer.step()
        return time.perf_counter() - t0

    positions = sorted(random.Random(train.seed).sample(range(steps_per_epoch), min(args.steps, steps_per_epoch)))
    gemm = gemm_probe()
    load = os.getloadavg()[0]
    print(
        f"torch {torch.__version__}, {args.threads} threads, {precision} ({why}), load average {load:.2f}; "
        f"timing {len(positions)} of {steps_per_epoch} steps per order",
        flush=True,
    )
    for mode in MODES:  # one untimed step each: first-call allocations
        step(*plans[mode][positions[0]])
    times: dict[str, list[tuple[Task, float]]] = {m: [] for m in MODES}
    t_start = time.perf_counter()
    for j, p in enumerate(positions):
        for mode in MODES if j % 2 == 0 else MODES[::-1]:
            task, idx = plans[mode][p]
            times[mode].append((task, step(task, idx)))
        print(f"  step {j + 1}/{len(positions)} (position {p}, {plans['none'][p][0]}) done", flush=True)
    timed_s = time.perf_counter() - t_start

    timing: dict[str, dict[str, Any]] = {}
    for mode in MODES:
        per_task: dict[str, list[float]] = defaultdict(list)
        for task, s in times[mode]:
            per_task[task].append(s)
        all_s = [s for _, s in times[mode]]
        mean = statistics.fmean(all_s)
        # the standard error of the estimate, as the spread of the sampled steps gives it
        se = statistics.stdev(all_s) / len(all_s) ** 0.5 * steps_per_epoch if len(all_s) > 1 else float("nan")
        timing[mode] = {
            "step_ms_mean": 1000 * mean,
            "step_ms_mean_per_task": {t: 1000 * statistics.fmean(v) for t, v in per_task.items()},
            "steps_timed_per_task": {t: len(v) for t, v in per_task.items()},
            "epoch_s_estimate": mean * steps_per_epoch,
            "epoch_s_standard_error": se,
        }
        # per-task means weighted by the task's batches: the steps of a task vary less than the steps of all tasks
        counts = loaders[mode].batches_per_task()
        if set(per_task) == set(counts):
            timing[mode]["epoch_s_estimate_by_task"] = sum(statistics.fmean(per_task[t]) * counts[t] for t in counts)

    lines = [
        f"Length-bucketed batches on {root} (train split, epoch {args.epoch}): batch {train.batch_size}, seed "
        f"{train.seed}, tasks {', '.join(tasks)}, mega-batch {args.bucket_size} batches; {steps_per_epoch} steps "
        "per epoch",
        "",
        "Padding over the whole epoch (exact): padded frames / all frames of the batches",
        f"{'task':<28}{'none':>10}{'length':>10}{'frames none':>14}{'frames length':>15}",
    ]
    for key in [*tasks, "all"]:
        a, b = pad["none"][key], pad["length"][key]
        lines.append(f"{key:<28}{a['fraction']:>10.1%}{b['fraction']:>10.1%}{a['frames']:>14,}{b['frames']:>15,}")
    lines += [
        "",
        f"Epoch time, SAMPLED ESTIMATE: {len(positions)} of {steps_per_epoch} steps timed per order (same positions, "
        f"interleaved), {precision} ({why}), {args.threads} threads; epoch = mean step x {steps_per_epoch}",
        f"{'':<28}{'none':>10}{'length':>10}",
    ]
    for t in tasks:
        a_ms = timing["none"]["step_ms_mean_per_task"].get(t)
        b_ms = timing["length"]["step_ms_mean_per_task"].get(t)
        n = timing["none"]["steps_timed_per_task"].get(t, 0)
        if a_ms is None or b_ms is None:
            lines.append(f"{t + ' ms/step':<28}{'-':>10}{'-':>10}   (not sampled)")
        else:
            lines.append(f"{t + ' ms/step':<28}{a_ms:>10.0f}{b_ms:>10.0f}   ({n} steps)")
    lines.append(
        f"{'mean ms/step':<28}{timing['none']['step_ms_mean']:>10.0f}{timing['length']['step_ms_mean']:>10.0f}"
    )
    est_a, est_b = timing["none"]["epoch_s_estimate"], timing["length"]["epoch_s_estimate"]
    se_a, se_b = timing["none"]["epoch_s_standard_error"], timing["length"]["epoch_s_standard_error"]
    lines.append(f"{'epoch s (estimate)':<28}{est_a:>10.0f}{est_b:>10.0f}   length / none = {est_b / est_a:.2f}")
    lines.append(f"{'  standard error, s':<28}{se_a:>10.0f}{se_b:>10.0f}")
    by_a, by_b = timing["none"].get("epoch_s_estimate_by_task"), timing["length"].get("epoch_s_estimate_by_task")
    if by_a is not None and by_b is not None:
        lines.append(
            f"{'epoch s (per-task means)':<28}{by_a:>10.0f}{by_b:>10.0f}   length / none = {by_b / by_a:.2f}"
            "   (task mean x the task's batches)"
        )
    lines += [
        "",
        f"{gemm['line']}; load average at start {load:.2f}; timed steps took {timed_s:.0f} s",
    ]
    text = "\n".join(lines) + "\n"
    print()
    print(text, end="")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        out.with_suffix(".json"),
        {
            "data_root": str(root),
            "split": data.train_split,
            "epoch": args.epoch,
            "tasks": tasks,
            "batch_size": train.batch_size,
            "seed": train.seed,
            "bucket_size": args.bucket_size,
            "steps_per_epoch": steps_per_epoch,
            "batches_per_task": loaders["none"].batches_per_task(),
            "padding": pad,
            "timing": {
                "estimate": "sampled: mean step time x steps per epoch; feature reading not timed",
                "steps_timed": len(positions),
                "positions": positions,
                "precision": precision,
                "precision_reason": why,
                "threads": args.threads,
                "timed_s": timed_s,
                **timing,
            },
            "gemm_probe": gemm,
            "load_average": load,
            "torch": torch.__version__,
            "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        },
    )
    atomic_write_text(out.with_suffix(".txt"), text)
    print(f"written {out.with_suffix('.json')} and {out.with_suffix('.txt')}")
    if args.write_docs:
        command = " ".join(["python benchmarks/bench_bucketing.py", *sys.argv[1:]]).replace(" --write-docs", "")
        body = f"Output of `{command}` ({out.with_suffix('.txt')}):\n\n```text\n{text.rstrip()}\n```"
        doc = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
        print(f"wrote {replace_marked_section(doc, 'bench-bucketing', body)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
