"""How much each inference-time switch of the authors' behaviour changes the results of a trained checkpoint.

Decodes the val split once with the project's defaults, once per ``eval.*`` switch set to ``reference``, and
once with all of them at once; prints a Markdown table and, with ``--write-docs``, replaces the table between the
``reference-switches`` markers of ``docs/reference.md``. Training-time switches (``model.padding``,
``train.caption_loss_padding``, ...) need a training run per setting and are not part of this table.

Run (after ``make demo``, which trains the checkpoint):

    .venv/bin/python benchmarks/reference_switches.py runs/sim_quag_cpu/checkpoints/best --write-docs
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from quag.inference.api import run_inference
from quag.io import replace_marked_section

SWITCHES: dict[str, list[str]] = {
    "defaults (ours)": [],
    "eval.moment_decoding=reference": ["eval.moment_decoding=reference"],
    "eval.segmentation_decoding=reference": ["eval.segmentation_decoding=reference"],
    "eval.segmentation_last=reference": ["eval.segmentation_last=reference"],
    "eval.segmentation_length=reference": ["eval.segmentation_length=reference"],
    "eval.caption_text=reference": ["eval.caption_text=reference"],
}
SWITCHES["all of them"] = [o for v in SWITCHES.values() for o in v]

COLUMNS = (
    "moment_retrieval/R@0.5",
    "moment_retrieval/R@0.7",
    "moment_segmentation/recall@0.5",
    "moment_segmentation/precision@0.5",
    "moment_segmentation_official_refill/recall@0.5",
    "moment_segmentation_official_refill/precision@0.5",
    "step_captioning/CIDEr",
)
"""Metric keys of the table (``moment_segmentation_official_refill``: clipped to and refilled from the GT moment,
as the official evaluation does)."""


def measure(checkpoint: str, split: str) -> dict[str, dict[str, float]]:
    rows = {}
    for name, overrides in SWITCHES.items():
        with tempfile.TemporaryDirectory() as tmp:
            out = run_inference(
                checkpoint,
                split=split,
                out_dir=tmp,
                evaluate=True,
                overrides=overrides,
                progress=False,
                caption_metrics=("CIDEr",),
            )
        rows[name] = out["metrics"]
        print(f"{name}: done", file=sys.stderr, flush=True)
    return rows


def table(rows: dict[str, dict[str, float]], checkpoint: str, split: str) -> str:
    first = next(iter(rows.values()))
    cols = [k for k in COLUMNS if k in first]
    missing = [k for k in COLUMNS if k not in first]
    if missing:
        raise SystemExit(f"metrics missing from the evaluation report: {missing}; available: {sorted(first)}")
    lines = [
        f"Checkpoint `{checkpoint}`, split `{split}` (command: "
        f"`.venv/bin/python benchmarks/reference_switches.py {checkpoint} --split {split} --write-docs`).",
        "",
        "| decoding | " + " | ".join(f"`{c}`" for c in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for name, m in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{m[c]:.2f}" for c in cols) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", help="a trained checkpoint folder, e.g. runs/sim_quag_cpu/checkpoints/best")
    ap.add_argument("--split", default="val", help="split to decode (default: val)")
    ap.add_argument("--write-docs", action="store_true", help="replace the table in docs/reference.md")
    args = ap.parse_args(argv)
    text = table(measure(args.checkpoint, args.split), args.checkpoint, args.split)
    print(text)
    if args.write_docs:
        doc = replace_marked_section(
            Path(__file__).resolve().parents[1] / "docs" / "reference.md", "reference-switches", text
        )
        print(f"wrote {doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
