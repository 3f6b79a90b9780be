"""The paper's TVSum protocol, resumable: one job per (seed, category), three selection rules, docs table.

    python benchmarks/tvsum_protocol.py --name base --config configs/tvsum_quag.yaml \
        --label-free-from runs/tvsum/cv/base.json --write-docs
    python benchmarks/tvsum_protocol.py --name base --epochs 400 --label-free-epoch 45 model.position=qd_detr

Each job trains one category for ``--epochs`` (default 2000, QD-DETR's count), evaluates the test video every
``--eval-every`` epochs and writes its result to ``<out-dir>/jobs/seed_<s>/<CAT>.json``; an interrupted run
resumes at the first unfinished job (a finished job is skipped, and said so). Reported per category and on
average, mean ± std over seeds (see :mod:`quag.tvsum.protocol`): the protocol maximum over the test
evaluations, the fixed last-epoch number, and the label-free number, chosen without test labels:
``--label-free-epoch N`` or ``--label-free-average START END`` (fixed in advance from a CV run of the same
config: one epoch's evaluation, or the average of the evaluations from START to END) or ``--label-free-from
CV.json`` (``benchmarks/tvsum_cv.py`` output, after checking it ran the same setting; ``--label-free-kind
epoch`` takes its best epoch, ``average`` its best averaging window, ``best`` whichever of the two validates
better). Without any of them the label-free row is
left out and the output says so.

Outputs in ``--out-dir`` (default ``runs/tvsum/protocol/<name>``): ``summary.json``, ``table.md``,
``predictions/seed_<s>/{protocol,fixed,label_free}.json``. ``--write-docs`` regenerates the marked protocol
section of docs/tvsum.md. Run it with ``OMP_NUM_THREADS=1``; ``train.workers`` processes of
``train.num_threads`` threads train at once.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from quag.io import marked_section, replace_marked_section
from quag.tvsum.config import TVSumConfig, load_tvsum_config
from quag.tvsum.protocol import (
    LABEL_FREE_KINDS,
    LabelFreeRule,
    check_label_free_epoch,
    label_free_from_cv,
    protocol_markdown,
    run_protocol,
)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "tvsum.md"


def add_protocol_arguments(parser: argparse.ArgumentParser, epochs: int, seeds: list[int]) -> None:
    """The arguments shared with ``benchmarks/tvsum_screen.py``."""
    parser.add_argument("overrides", nargs="*", help="section.key=value config overrides")
    parser.add_argument("--config", help="YAML config (default: the built-in defaults = configs/tvsum_quag.yaml)")
    parser.add_argument("--epochs", type=int, default=epochs, help=f"epochs per job (default {epochs})")
    parser.add_argument("--eval-every", type=int, default=5, help="test evaluation interval (default 5)")
    parser.add_argument("--seeds", type=int, nargs="+", default=seeds, help=f"seeds (default {seeds})")
    parser.add_argument("--categories", nargs="+", help="categories (default: all 10)")
    parser.add_argument("--workers", type=int, help="worker processes (default: train.workers)")
    parser.add_argument("--write-docs", action="store_true", help="regenerate the marked section of docs/tvsum.md")


def add_label_free_kind_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """``--label-free-kind``, shared with ``benchmarks/tvsum_screen.py``; ``what`` says which CV file it reads."""
    parser.add_argument(
        "--label-free-kind",
        choices=LABEL_FREE_KINDS,
        default="epoch",
        help=f"{what}: its best epoch, its best averaging window, or the better of the two on the CV (default epoch)",
    )


def rule_from_cv(
    parser: argparse.ArgumentParser, path: str | Path, cfg: TVSumConfig, kind: str, label: str
) -> LabelFreeRule:
    """:func:`label_free_from_cv`, with a CV file that cannot be used reported in one line naming ``label``."""
    try:
        return label_free_from_cv(path, cfg, kind)
    except (OSError, ValueError, KeyError) as e:
        parser.error(f"{label}: {e}")


def build_config(args: argparse.Namespace, extra: list[str] | None = None) -> TVSumConfig:
    overrides = [
        *args.overrides,
        *(extra or []),
        f"train.epochs={args.epochs}",
        f"train.eval_every={args.eval_every}",
        "train.seeds=[" + ", ".join(str(s) for s in args.seeds) + "]",
    ]
    if args.categories:
        overrides.append("data.categories=[" + ", ".join(args.categories) + "]")
    if args.workers:
        overrides.append(f"train.workers={args.workers}")
    return load_tvsum_config(args.config, overrides)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_protocol_arguments(parser, epochs=2000, seeds=[0, 1, 2])
    parser.add_argument("--name", required=True, help="run name")
    parser.add_argument("--out-dir", help="output folder (default runs/tvsum/protocol/<name>)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--label-free-epoch", type=int, help="label-free epoch, fixed in advance from a CV run")
    group.add_argument(
        "--label-free-average",
        type=int,
        nargs=2,
        metavar=("START", "END"),
        help="label-free number from the average of the evaluations at epochs START-END, fixed in advance",
    )
    group.add_argument("--label-free-from", help="CV result (runs/tvsum/cv/<name>.json) whose rule to use")
    add_label_free_kind_argument(parser, "with --label-free-from")
    parser.add_argument(
        "--docs-section",
        default="tvsum-protocol",
        help="marked section of docs/tvsum.md that --write-docs fills (default tvsum-protocol)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    if args.write_docs:
        try:  # before hours of training, not after
            marked_section(DOCS, args.docs_section)
        except ValueError as e:
            parser.error(f"--docs-section {args.docs_section}: {e}")

    cfg = build_config(args, [f"name={args.name}"])
    out_dir = Path(args.out_dir) if args.out_dir else Path(cfg.output_dir) / "protocol" / args.name
    rule = None
    if args.label_free_epoch is not None:
        rule = LabelFreeRule(args.label_free_epoch, f"--label-free-epoch {args.label_free_epoch}")
    elif args.label_free_average is not None:
        start, end = args.label_free_average
        rule = LabelFreeRule(end, f"--label-free-average {start} {end}", start)
    elif args.label_free_from:
        path = args.label_free_from
        rule = rule_from_cv(parser, path, cfg, args.label_free_kind, f"--label-free-from {path}")
    try:
        check_label_free_epoch(rule, cfg)
    except ValueError as e:
        parser.error(str(e))
    print(f"label-free rule: {'none (no label-free number)' if rule is None else rule.source}", flush=True)
    summary = run_protocol(cfg, out_dir, rule, log=lambda line: print(line, flush=True))
    table = protocol_markdown(summary)
    print(table)
    print(f"-> {out_dir} (summary.json, table.md, predictions/)")
    if args.write_docs:
        command = "python benchmarks/tvsum_protocol.py " + " ".join(argv if argv is not None else sys.argv[1:])
        replace_marked_section(DOCS, args.docs_section, f"Filled by `{command}`.\n\n{table}")
        print(f"updated {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
