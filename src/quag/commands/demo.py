"""``quag demo``: the main job on the built-in simulated data (see :mod:`quag.demo`)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="configs/sim_quag_cpu.yaml", help="experiment config")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides")
    parser.add_argument("--report-videos", type=int, default=6, help="videos drawn in the HTML report")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from quag.demo import run_demo

    run_demo(args.config, args.overrides, report_videos=args.report_videos, progress=not args.no_progress)
    return 0
