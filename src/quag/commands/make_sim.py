"""``quag make-sim``: write HiREST-sim (see :mod:`quag.data.sim`)."""

from __future__ import annotations

import argparse

from quag.data.sim import SimConfig, build_sim


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = SimConfig()
    parser.add_argument("--source", default="data/hirest", help="annotation root (official HiREST files)")
    parser.add_argument("--out", default="data/hirest-sim", help="dataset root to write (official layout)")
    parser.add_argument("--seed", type=int, default=d.seed, help="random seed of the simulated features")
    parser.add_argument("--train-videos", type=int, default=d.train_videos, help="clip videos from train (0 = all 865)")
    parser.add_argument("--val-videos", type=int, default=d.val_videos, help="clip videos from val (0 = all 193)")
    parser.add_argument("--full", action="store_true", help="all clip videos of train and val (same as 0 / 0)")
    parser.add_argument("--noise", type=float, default=d.noise, help="temporal noise of the visual features")
    parser.add_argument("--silence", type=float, default=d.silence, help="share of silent transcript slots")
    parser.add_argument(
        "--cut-probability",
        type=float,
        default=d.cut_probability,
        help="chance of a one-second transition shot where a step begins",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    cfg = SimConfig(
        seed=args.seed,
        train_videos=0 if args.full else args.train_videos,
        val_videos=0 if args.full else args.val_videos,
        noise=args.noise,
        silence=args.silence,
        cut_probability=args.cut_probability,
    )
    from quag.pipeline.text import MiniLMEncoder

    counts = build_sim(args.source, args.out, cfg, encode=MiniLMEncoder(), progress=not args.no_progress)
    print(f"HiREST-sim written to {args.out}: " + ", ".join(f"{k} {n} videos" for k, n in counts.items()))
    print("The features are SIMULATED; numbers on them are not comparable with the paper (see its README.md).")
    return 0
