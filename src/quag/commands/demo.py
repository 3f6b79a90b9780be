"""``quag demo``: the main job on the built-in simulated data (see :mod:`quag.demo`)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="configs/sim_quag_cpu.yaml", help="experiment config")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides")
    parser.add_argument("--report-videos", type=int, default=6, help="videos drawn in the HTML report")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--write-readme",
        nargs="?",
        const="README.md",
        default=None,
        metavar="README",
        help="also write the results table between the demo-table markers of README (default file: README.md)",
    )


def run(args: argparse.Namespace) -> int:
    from quag.demo import run_demo

    run_demo(
        args.config,
        args.overrides,
        report_videos=args.report_videos,
        progress=not args.no_progress,
        readme=args.write_readme,
    )
    return 0
