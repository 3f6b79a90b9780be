"""CPU dropout: quag's 16-bit-draw mask against ``torch.bernoulli_`` and ``F.dropout``, at the paper's shapes.

    python benchmarks/bench_dropout.py                # prints the table
    python benchmarks/bench_dropout.py --write-docs   # also rewrites the table in docs/benchmarks.md

Per shape (an activation (5, 280, 768), an FFN activation (5, 280, 3072), an attention map (5, 12, 280, 280)) and
drop probability 0.1: the time to draw the keep-mask alone (``dropout_keep_mask`` against ``bernoulli_`` on a bool
tensor) and of the whole bf16 dropout (``quag.models.layers.dropout`` against ``F.dropout``), medians of interleaved
rounds in one run, with the measured drop rate of each mask. Nothing here is compared with another day's number.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from quag.io import atomic_write_json, atomic_write_text, replace_marked_section
from quag.models.layers import dropout, dropout_keep_mask

sys.path.insert(0, str(Path(__file__).parent))
from probe import gemm_probe  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHAPES = {"activation": (5, 280, 768), "FFN activation": (5, 280, 3072), "attention map": (5, 12, 280, 280)}
P = 0.1


def interleaved_ms(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median milliseconds of each function, the functions taking turns within every round."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


def measure(rounds: int) -> dict[str, Any]:
    torch.manual_seed(0)
    rows = []
    for label, shape in SHAPES.items():
        x = torch.randn(shape).to(torch.bfloat16)
        mask = torch.empty(shape, dtype=torch.bool)
        ms = interleaved_ms(
            {
                "mask_quag": lambda shape=shape: dropout_keep_mask(torch.Size(shape), P),
                "mask_bernoulli": lambda mask=mask: mask.bernoulli_(1 - P),
                "dropout_quag": lambda x=x: dropout(x, P),
                "dropout_torch": lambda x=x: F.dropout(x, P),
            },
            rounds,
        )
        rows.append(
            {
                "name": label,
                "shape": list(shape),
                **{f"{k}_ms": v for k, v in ms.items()},
                "drop_rate_quag": 1 - dropout_keep_mask(torch.Size(shape), P).float().mean().item(),
                "drop_rate_bernoulli": 1 - mask.bernoulli_(1 - P).float().mean().item(),
            }
        )
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "p": P, "rounds": rounds, "rows": rows}


def render(payload: dict[str, Any], probe_line: str) -> str:
    lines = [
        f"torch {payload['torch']}, cpu; {probe_line}",
        f"drop probability {payload['p']}, median of {payload['rounds']} interleaved rounds, ms",
        "",
        "shape                               mask: quag  bernoulli_   x    dropout bf16: quag  F.dropout   x"
        "   drop rate quag / bernoulli_",
    ]
    for r in payload["rows"]:
        shape = "x".join(map(str, r["shape"]))
        lines.append(
            f"{r['name'] + ' ' + shape:34s} {r['mask_quag_ms']:10.2f} {r['mask_bernoulli_ms']:11.2f}"
            f" {r['mask_bernoulli_ms'] / r['mask_quag_ms']:5.1f}x {r['dropout_quag_ms']:18.2f}"
            f" {r['dropout_torch_ms']:10.2f} {r['dropout_torch_ms'] / r['dropout_quag_ms']:4.1f}x"
            f"   {r['drop_rate_quag']:.4f} / {r['drop_rate_bernoulli']:.4f}"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--write-docs", action="store_true", help="rewrite the table in docs/benchmarks.md")
    args = ap.parse_args()
    probe = gemm_probe()
    payload = measure(args.rounds)
    payload["gemm_probe"] = probe
    text = render(payload, probe["line"])
    print(text)
    out = REPO / "benchmarks" / "results"
    atomic_write_json(out / "bench_dropout.json", payload)
    atomic_write_text(out / "bench_dropout.txt", text + "\n")
    if args.write_docs:
        source = "Output of `python benchmarks/bench_dropout.py` (benchmarks/results/bench_dropout.txt):"
        block = f"{source}\n\n```text\n{text}\n```"
        replace_marked_section(REPO / "docs" / "benchmarks.md", "bench-dropout", block)


if __name__ == "__main__":
    main()
