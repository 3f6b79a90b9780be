"""``quag baselines --data ROOT --split val``: score the trivial baselines on a split's real ground truth.

Baselines (definitions in :mod:`quag.evaluation.baselines`): whole video and mean train span (moment retrieval),
uniform split into the train median step count (moment segmentation, raw and with the official preprocessing),
nearest-query train captions and the most frequent train caption (step captioning). They need annotations only.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from quag.commands.evaluate import add_caption_arguments, caption_options_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=Path("data/hirest"), help="HiREST root (splits/, evaluation/)")
    parser.add_argument("--split", default="val", choices=("train", "val", "test"), help="split to score")
    parser.add_argument("--out", type=Path, default=None, help="write every report to this JSON file")
    parser.add_argument("--per-category", action="store_true", help="also score each HiREST category")
    parser.add_argument(
        "--minilm",
        type=Path,
        default=None,
        help="sentence-transformers folder for the nearest-caption query embeddings "
        "(default: the bundled all-MiniLM-L6-v2)",
    )
    add_caption_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from quag.evaluation.baselines import QueryEmbedding, run_baselines
    from quag.evaluation.evaluate import format_rows
    from quag.io import atomic_write_json
    from quag.pipeline.text import MiniLMEncoder

    start = time.perf_counter()
    encoder = MiniLMEncoder(args.minilm)
    # the report names the bundled model; a folder given with --minilm is reported as "given embedder"
    embed: QueryEmbedding = encoder if args.minilm is None else encoder.encode
    result = run_baselines(
        args.data,
        args.split,
        embed=embed,
        caption_options=caption_options_from_args(args),
        per_category=args.per_category,
    )
    elapsed = time.perf_counter() - start
    params = result["parameters"]
    print(f"HiREST {args.split} baselines (ground truth: {result['ground_truth']})")
    print(
        f"mean relative train span {params['mean_relative_span'][0]:.4f}-{params['mean_relative_span'][1]:.4f}, "
        f"train median steps {params['median_num_steps']}, most frequent train caption "
        f"{params['most_frequent_caption']!r}, query embedder {params['nearest_caption_embedder']}"
    )
    for task, reports in result["results"].items():
        print()
        print(format_rows(task, {name: rep["metrics"]["all"] for name, rep in reports.items()}, first="baseline"))
    skipped = next(iter(result["results"]["step_captioning"].values()))["not_computed"]
    for metric, reason in skipped.items():
        print(f"not computed: {metric}: {reason}")
    for note in result["notes"]:
        print(f"note: {note}")
    if args.out is not None:
        atomic_write_json(args.out, result)
        print(f"reports: {args.out}")
    print(f"done in {elapsed:.1f} s")
    return 0
