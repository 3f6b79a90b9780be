"""bf16 autocast vs fp32: the training-loss curve over 200 steps on HiREST-sim, same data order and init.

    quag make-sim                                   # if data/hirest-sim does not exist yet
    python benchmarks/bf16_loss_curve.py [--steps 200] [--config configs/sim_quag_cpu.yaml]

Prints the per-task mean loss of both runs over consecutive 50-step windows, their relative difference, and the
wall time of each run. ``train.precision=bf16`` is acceptable when every window differs by less than 1%.
``--write-docs`` regenerates the table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

from quag.config import load_config
from quag.io import replace_marked_section
from quag.training.recipe import train

sys.path.insert(0, str(Path(__file__).parent))
from probe import gemm_probe  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def windows(losses: list[dict], size: int) -> list[dict[str, float]]:
    out = []
    for start in range(0, len(losses), size):
        acc: dict[str, list[float]] = defaultdict(list)
        for rec in losses[start : start + size]:
            acc[rec["task"]].append(rec["task_loss"])
        out.append({task: sum(v) / len(v) for task, v in acc.items()})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/sim_quag_cpu.yaml")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--write-docs", action="store_true", help="regenerate the table in docs/benchmarks.md")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    probe = gemm_probe()
    runs = {}
    for precision in ("fp32", "bf16"):
        cfg = load_config(
            args.config,
            [
                *args.overrides,
                f"train.max_steps={args.steps}",
                "train.eval_every_epochs=1000",
                f"train.precision={precision}",
                f"name=bf16check_{precision}",
                "output_dir=runs/bench",
            ],
        )
        t0 = time.time()
        result = train(cfg, device="cpu", progress=True, overwrite=True)
        runs[precision] = (windows(result.losses, args.window), time.time() - t0)
    (fp32, t32), (bf16, t16) = runs["fp32"], runs["bf16"]
    lines = [
        f"`python benchmarks/bf16_loss_curve.py{' ' + ' '.join(args.overrides) if args.overrides else ''}`: "
        f"{args.config}, HiREST-sim train split, seed {cfg.train.seed}, {args.steps} steps from the same "
        f"initialisation and data order; {probe['line']}",
        "",
        "| steps | task | fp32 loss | bf16 loss | relative difference |",
        "|---|---|---:|---:|---:|",
    ]
    worst = 0.0
    for i, (a, b) in enumerate(zip(fp32, bf16, strict=True)):
        for task in sorted(a):
            diff = abs(b[task] - a[task]) / abs(a[task])
            worst = max(worst, diff)
            span = f"{i * args.window + 1}-{(i + 1) * args.window}"
            lines.append(f"| {span} | {task} | {a[task]:.4f} | {b[task]:.4f} | {100 * diff:.2f}% |")
    lines += [
        "",
        f"Largest window difference {100 * worst:.2f}% (target: below 1%); wall time fp32 {t32:.0f} s, "
        f"bf16 {t16:.0f} s (each including its validation at the end).",
    ]
    text = "\n".join(lines)
    print("\n" + text)
    if args.write_docs:
        print(f"wrote {replace_marked_section(REPO / 'docs' / 'benchmarks.md', 'bf16-loss-curve', text)}")


if __name__ == "__main__":
    main()
