"""``quag tvsum [--config YAML] [section.key=value ...]``: paper Table 5, one QUAG per TVSum category and seed.

Example (the reported run)::

    quag tvsum --config configs/tvsum_quag.yaml --seeds 0 1 2

Features are read in place from ``--data-dir``, ``$QUAG_TVSUM_DIR`` or ``../shared/data/tvsum``. Results go to
``runs/tvsum/<name>/`` (see :mod:`quag.tvsum.train`); a rerun resumes finished (seed, category) pairs.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. train.epochs=100")
    parser.add_argument("--config", help="YAML config (default: the built-in defaults = configs/tvsum_quag.yaml)")
    parser.add_argument("--data-dir", help="TVSum feature folder (default: $QUAG_TVSUM_DIR or ../shared/data/tvsum)")
    parser.add_argument("--name", help="run name, i.e. the folder under --output-dir (overrides the config)")
    parser.add_argument("--output-dir", help="parent folder of TVSum runs (default: runs/tvsum)")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds, one full run each (default: 0 1 2)")
    parser.add_argument("--categories", nargs="+", help="categories to train, e.g. VT VU (default: all 10)")
    parser.add_argument("--epochs", type=int, help="epochs per category (overrides train.epochs)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from quag.tvsum.config import load_tvsum_config
    from quag.tvsum.table import markdown_table, summarize
    from quag.tvsum.train import run_tvsum

    overrides = list(args.overrides)
    for flag, key in (
        ("data_dir", "data.root"),
        ("name", "name"),
        ("output_dir", "output_dir"),
        ("seeds", "train.seeds"),
        ("categories", "data.categories"),
        ("epochs", "train.epochs"),
    ):
        value = getattr(args, flag)
        if value is not None:
            # Lists are written as YAML flow sequences; ids like "VT" stay strings.
            text = "[" + ", ".join(str(v) for v in value) + "]" if isinstance(value, list) else str(value)
            overrides.append(f"{key}={text}")
    cfg = load_tvsum_config(args.config, overrides)
    out = run_tvsum(cfg, progress=not args.no_progress)
    rows = {f"QUAG (ours, {kind})": summarize(out.results, kind) for kind in ("protocol", "fixed")}
    print(markdown_table(rows, out.summary["references"]))
    for seed, wall in out.wall_s.items():
        print(f"seed {seed}: " + ("resumed, no full wall time" if wall is None else f"{wall / 60:.1f} min wall"))
    print(f"run folder: {cfg.run_dir} (table.md, summary.json, seed_*/predictions_*.json)")
    return 0
