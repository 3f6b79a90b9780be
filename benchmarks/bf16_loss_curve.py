"""bf16 autocast vs fp32: the training-loss curve over 200 steps on HiREST-sim, same data order and init.

    quag make-sim                                   # if data/hirest-sim does not exist yet
    python benchmarks/bf16_loss_curve.py [--steps 200] [--config configs/sim_quag_cpu.yaml]

Prints the per-task mean loss of both runs over consecutive 50-step windows, their relative difference, and the
wall time of each run. ``train.precision=bf16`` is acceptable when every window differs by less than 1%.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

from quag.config import load_config
from quag.training.recipe import train


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
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
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
        result = train(cfg, device="cpu", progress=True)
        runs[precision] = (windows(result.losses, args.window), time.time() - t0)
    (fp32, t32), (bf16, t16) = runs["fp32"], runs["bf16"]
    print(f"\n{'steps':<12}{'task':<22}{'fp32':>9}{'bf16':>9}{'rel. diff':>11}")
    worst = 0.0
    for i, (a, b) in enumerate(zip(fp32, bf16, strict=True)):
        for task in sorted(a):
            diff = abs(b[task] - a[task]) / abs(a[task])
            worst = max(worst, diff)
            span = f"{i * args.window + 1}-{(i + 1) * args.window}"
            print(f"{span:<12}{task:<22}{a[task]:>9.4f}{b[task]:>9.4f}{100 * diff:>10.2f}%")
    print(f"largest window difference {100 * worst:.2f}% (target < 1%); wall time fp32 {t32:.0f} s, bf16 {t16:.0f} s")


if __name__ == "__main__":
    main()
