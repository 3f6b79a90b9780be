"""``quag example``: the speech-only model on the committed example videos, scored against their scripts.

Builds HiREST-sim and trains ``configs/sim_speech_cpu.yaml`` when they are missing (a few minutes on a CPU), then
predicts on ``examples/*.mp4`` as ``quag predict`` does and prints the moment, the steps, a caption per step and the
score against the script's timings (see :mod:`quag.pipeline.example`). ``make example`` runs it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from quag.commands import add_device_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "items",
        nargs="*",
        default=[],
        help="example ground-truth files (default: every examples/<name>.json) and key=value overrides of --config",
    )
    parser.add_argument("--config", default="configs/sim_speech_cpu.yaml", help="the speech-only model's config")
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="use this checkpoint folder instead of training the config's"
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <run>/example)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_device_argument(parser, "device of the model and the encoders (training always runs on the CPU)")


def run(args: argparse.Namespace) -> int:
    from quag.inference.device import resolve_device
    from quag.pipeline.example import run_example
    from quag.pipeline.predictor import default_cache_dir

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    examples: list[str | Path] = [Path(x) for x in args.items if "=" not in x]
    overrides = [x for x in args.items if "=" in x]
    run_example(
        examples=examples or None,
        config_path=args.config,
        overrides=overrides,
        checkpoint=args.checkpoint,
        out_dir=args.out,
        device=str(resolve_device(args.device)),
        cache_dir=None if args.no_cache else default_cache_dir(),
        progress=not args.no_progress,
    )
    return 0
