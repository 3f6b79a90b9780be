"""Screen the switches of the TVSum model (QD-DETR differences, learning-rate decay, weight averaging) through the
protocol's resumable jobs.

    python benchmarks/tvsum_screen.py --name switches --label-free-epoch 45 --write-docs
    python benchmarks/tvsum_screen.py --name switches --variants base tokens \
        --combine tokens+position --label-free-cv-dir runs/tvsum/cv --label-free-epoch 45

Every variant is the base config (``--config`` and the plain overrides) plus its own overrides (``VARIANTS``,
and each ``--combine a+b`` unites theirs), run by ``benchmarks/tvsum_protocol.py``'s machinery at ``--epochs``
(default 400) for ``--seeds`` (default 0 1) into ``<out-dir>/<variant>/`` (default out-dir
``runs/tvsum/screen/<name>``). The base variant, and the variants named by ``--base-seeds-for``, run
``--base-seeds`` when given (e.g. 0 1 2 for the default setting and its runners-up). Finished jobs are
skipped, so an interrupted screen resumes.

Label-free rule per variant: from ``<label-free-cv-dir>/screen_<variant>.json`` when that CV file exists (print
the commands that make them with ``--print-cv-commands``; ``--label-free-kind`` takes its best epoch, its best
averaging window, or the better of the two on the CV), else ``--label-free-epoch``; the table names the rule
used. The default setting is chosen by the label-free number, never by the protocol maximum (which selects on
the test videos).

Writes ``<out-dir>/screen.json`` and ``screen.md`` (per variant: protocol, label-free and fixed averages, mean ±
std over seeds, parameters, wall time per seed); ``--write-docs`` regenerates the marked screen section of
docs/tvsum.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from tvsum_protocol import DOCS, add_label_free_kind_argument, add_protocol_arguments, build_config, rule_from_cv

from quag.io import atomic_write_json, atomic_write_text, replace_marked_section
from quag.tvsum.protocol import LabelFreeRule, job_path, map_at, run_protocol
from quag.tvsum.table import mean_std_cell, summarize_scores

VARIANTS: dict[str, list[str]] = {
    "base": [],
    "negative_titles": ["train.negative_query_weight=1"],  # (a)
    "position": ["model.position=qd_detr"],  # (b)
    "tokens": ["model.query_input=tokens"],  # (c)
    "no_audio": ["model.use_audio=false", "model.use_msp=false"],  # (d); MSP needs the audio stream
    "dropout": ["model.dropout_scheme=qd_detr"],  # (e)
    "global_token": ["model.saliency_head=global_token"],  # (f)
    "no_msp": ["model.use_msp=false"],  # (g) no MSP and no L_msp, audio kept (V + A)
    "lr_decay": ["train.lr_schedule=linear"],  # learning rate decayed linearly to 0 at the last epoch
    "ema": ["train.ema_decay=0.95"],  # the moving average of the weights is scored
}
"""The base setting, one QD-DETR difference each (docs/tvsum.md, "Switches") and two ways to a steadier model."""


def variant_overrides(name: str) -> list[str]:
    """Overrides of a variant; ``a+b`` unites those of ``a`` and ``b`` (later ones win)."""
    out: list[str] = []
    for part in name.split("+"):
        if part not in VARIANTS:
            raise SystemExit(f"unknown variant {part!r}; choose from {', '.join(VARIANTS)} (join with +)")
        out += VARIANTS[part]
    return out


def fmt(stats: dict[str, Any] | None) -> str:
    """The average over categories as mean ± sample std over seeds (the mean alone for one seed)."""
    return "-" if stats is None else mean_std_cell(stats["Avg."])


def common_epoch_scores(out_dir: Path, seeds: list[int], categories: list[str], epoch: int) -> dict[str, Any]:
    """Every job's test mAP at one epoch shared by all variants: the stats and each seed's category mean."""
    per_seed = {
        s: {c: map_at(json.loads(job_path(out_dir, s, c).read_text()), epoch) for c in categories} for s in seeds
    }
    return {
        "epoch": epoch,
        "stats": summarize_scores(per_seed),
        "per_seed": {str(s): sum(v.values()) / len(v) for s, v in per_seed.items()},
    }


def label_free_on(summary: dict[str, Any], seeds: list[int]) -> float | None:
    """The label-free average over categories and over ``seeds`` (None when a seed or the rule is missing)."""
    per_seed = summary.get("per_seed", {}).get("label_free", {})
    if not seeds or any(str(s) not in per_seed for s in seeds):
        return None
    mean: float = summarize_scores({s: per_seed[str(s)] for s in seeds})["Avg."]["mean"]
    return mean


def screen_markdown(rows: list[dict[str, Any]], epochs: int, screen_seeds: list[int]) -> str:
    """The screen's table; ``screen_seeds`` (``--seeds``) are the seeds every variant ran, on which the default
    is chosen."""
    common = next((r["common_epoch"]["epoch"] for r in rows if r.get("common_epoch")), None)
    on = " ".join(map(str, screen_seeds))
    lines = [
        f"| Variant | Overrides | Seeds | Params (M) | Protocol max | Label-free | Label-free, seeds {on} "
        "| Label-free rule " + ("" if common is None else f"| At epoch {common} ") + "| Fixed | Wall min / seed |",
        "|---" * (10 if common is None else 11) + "|",
    ]
    for r in rows:
        s = r["summary"]
        walls = [w["elapsed_s"] for w in s["wall_s"].values()]
        wall = " / ".join("resumed" if w is None else f"{w / 60:.1f}" for w in walls)
        lf = s["label_free_rule"]
        lf_text = "-" if lf is None else f"{LabelFreeRule(**lf).describe()} ({lf['source']})"
        rules = s["rules"]
        on_screen = label_free_on(s, screen_seeds)
        lines.append(
            f"| {r['variant']} | {' '.join(f'`{o}`' for o in r['overrides']) or '-'} | "
            f"{' '.join(map(str, r['seeds']))} | {s['params'] / 1e6:.2f} | "
            f"{fmt(rules.get('protocol'))} | {fmt(rules.get('label_free'))} | "
            f"{'-' if on_screen is None else f'{on_screen:.1f}'} | {lf_text} | "
            + ("" if common is None else f"{fmt(r['common_epoch']['stats'] if r.get('common_epoch') else None)} | ")
            + f"{fmt(rules.get('fixed'))} | {wall} |"
        )
    return (
        f"{epochs} epochs; top-5 mAP (%) averaged over the categories, mean ± "
        "sample std over seeds (the mean alone for one seed). The default is chosen by the label-free number on the "
        f"seeds every variant ran (`Label-free, seeds {on}`), never by the protocol maximum, which selects its epoch "
        "on the test videos; variants given more seeds (`--base-seeds-for`) show all of them in the other columns."
        + (
            ""
            if common is None
            else f" `At epoch {common}` scores every variant at the same epoch, fixed in advance "
            "(`--label-free-epoch`), which reads no test label either."
        )
        + "\n\n"
        + "\n".join(lines)
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_protocol_arguments(parser, epochs=400, seeds=[0, 1])
    parser.add_argument("--name", required=True, help="screen name")
    parser.add_argument("--out-dir", help="output folder (default runs/tvsum/screen/<name>)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), help="variants to run (default: all)")
    parser.add_argument("--combine", nargs="*", default=[], help="extra variants joining others, e.g. tokens+position")
    parser.add_argument("--base-seeds", type=int, nargs="+", help="seeds of the base variant (default: --seeds)")
    parser.add_argument(
        "--base-seeds-for",
        nargs="+",
        default=[],
        metavar="VARIANT",
        help="other variants that also run --base-seeds (e.g. the runners-up, to compare with the base on its seeds)",
    )
    parser.add_argument("--label-free-epoch", type=int, help="label-free epoch of variants without a CV file")
    parser.add_argument("--label-free-cv-dir", help="folder of CV results named screen_<variant>.json")
    add_label_free_kind_argument(parser, "rule taken from a variant's CV file")
    parser.add_argument("--print-cv-commands", action="store_true", help="print the CV command of each variant, exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

    names = list(dict.fromkeys([*args.variants, *args.combine]))
    for n in names:
        variant_overrides(n)  # fail early on a typo
    stray = [n for n in args.base_seeds_for if n not in names]
    if stray:
        parser.error(f"--base-seeds-for {' '.join(stray)}: not among --variants/--combine")
    if args.base_seeds_for and not args.base_seeds:
        parser.error("--base-seeds-for needs --base-seeds")
    base = " ".join(args.overrides)
    config = f" --config {args.config}" if args.config else ""
    if args.print_cv_commands:
        for n in names:
            extra = " ".join(variant_overrides(n))
            words = [f"--name screen_{n}{config} --epochs {args.epochs} --eval-every {args.eval_every}", base, extra]
            print("OMP_NUM_THREADS=1 python benchmarks/tvsum_cv.py " + " ".join(w for w in words if w))
        return 0
    root = Path(args.out_dir) if args.out_dir else Path("runs/tvsum/screen") / args.name
    rows = []
    for n in names:
        overrides = variant_overrides(n)
        seeds = args.base_seeds if args.base_seeds and (n == "base" or n in args.base_seeds_for) else args.seeds
        cfg = build_config(argparse.Namespace(**{**vars(args), "seeds": seeds}), [*overrides, f"name={args.name}_{n}"])
        rule = None
        cv = Path(args.label_free_cv_dir) / f"screen_{n}.json" if args.label_free_cv_dir else None
        if cv is not None and cv.is_file():
            rule = rule_from_cv(parser, cv, cfg, args.label_free_kind, str(cv))
        elif args.label_free_epoch is not None:
            rule = LabelFreeRule(args.label_free_epoch, f"--label-free-epoch {args.label_free_epoch}, no CV of its own")
        print(f"== {n}: {' '.join(overrides) or '(base)'}; label-free: {'none' if rule is None else rule.source}")
        summary = run_protocol(cfg, root / n, rule, log=lambda line: print("  " + line, flush=True))
        row = {"variant": n, "overrides": overrides, "seeds": seeds, "summary": summary}
        if args.label_free_epoch is not None:
            row["common_epoch"] = common_epoch_scores(root / n, seeds, list(cfg.data.categories), args.label_free_epoch)
        rows.append(row)
    table = screen_markdown(rows, args.epochs, args.seeds)
    atomic_write_json(root / "screen.json", {"variants": rows, "base_overrides": args.overrides})
    atomic_write_text(root / "screen.md", table)
    print(table)
    if args.write_docs:
        command = "python benchmarks/tvsum_screen.py " + " ".join(argv if argv is not None else sys.argv[1:])
        replace_marked_section(DOCS, "tvsum-screen", f"Filled by `{command}`.\n\n{table}")
        print(f"updated {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
