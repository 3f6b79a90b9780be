"""``quag train CONFIG [section.key=value ...]``: train QUAG or the Joint baseline (see :mod:`quag.training.recipe`).

Several processes: ``torchrun --nproc_per_node=N -m quag train CONFIG``. A run folder that holds a previous run is
continued with ``--resume`` or replaced with ``--overwrite``, never reused silently (docs/training.md, "Run folders").
"""

from __future__ import annotations

import argparse

from quag.commands import add_device_argument
from quag.config import load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML experiment config (configs/*.yaml)")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. train.lr=2e-5")
    parser.add_argument("--resume", help="checkpoint folder to continue from (e.g. runs/<name>/checkpoints/last)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a previous run in the run folder (without it or --resume, a used run folder is refused)",
    )
    add_device_argument(parser, "training device")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from quag.training import distributed as D
    from quag.training.recipe import train

    cfg = load_config(args.config, args.overrides)
    result = train(cfg, resume=args.resume, device=args.device, progress=not args.no_progress, overwrite=args.overwrite)
    if D.dist_info_from_env().is_main:
        best = "n/a" if result.best_score is None else f"{result.best_score:.2f}"
        print(f"trained {result.steps} steps; best val/mean_score {best}; run folder {result.run_dir}")
        for k, v in sorted(result.val_metrics.items()):
            print(f"  val/{k}: {v:.2f}")
    D.shutdown(0)  # gloo: leave the process group cleanly before exit (no-op in one process)
    return 0
