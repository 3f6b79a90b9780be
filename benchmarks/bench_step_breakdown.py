"""Where a training step's time goes: QUAG at the paper setting on ``bench_quag.py``'s shapes, by kind of work.

    python benchmarks/bench_step_breakdown.py                # prints the tables (~2 min on a 2-core CPU)
    python benchmarks/bench_step_breakdown.py --write-docs   # also rewrites them in docs/benchmarks.md

Two tables, one run, one process:

* **step time** per task, medians of interleaved rounds: quag's default bf16 step (``train.release_memory`` on),
  the same without the heap trimming, and a bound that no training setting reaches: every parameter, optimizer
  moment and activation in bf16, no autocast and no casts (bf16 weights lose small updates, so quag never trains
  this way). The rate of each row's matrix products (``bench_quag.training_flops``) is given as a share of the
  GEMM probe's bf16 rate, and the page faults per step (``ru_minflt``) beside it.
* **breakdown** of the default bf16 step: the self time of every operator in ``--profiled`` steps under
  ``torch.profiler``, summed by kind (:data:`KINDS`). The profiler's own overhead makes the total longer than
  an unprofiled step; the shares are what the table is for. Time spent in the kernel's page-fault handler is
  inside whichever operator touched the fresh page.

Nothing here is compared with another day's number.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import resource
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from quag.data.collate import trim_caption_padding
from quag.io import atomic_write_json, atomic_write_text, replace_marked_section
from quag.tasks import TASKS
from quag.training.optim import build_optimizer

sys.path.insert(0, str(Path(__file__).parent))
import bench_quag  # noqa: E402
from bench_quag import BF16_PATH, TimedPath, interleaved_ms, make_batch, paper_model, train_step_fn  # noqa: E402
from probe import gemm_probe  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TRIM_LABEL = "quag.heap.trim_heap"

KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "matrix products",
        (
            "aten::mm",
            "aten::addmm",
            "aten::bmm",
            "aten::baddbmm",
            "aten::_scaled_dot_product_flash_attention_for_cpu",
            "aten::_scaled_dot_product_flash_attention_for_cpu_backward",
        ),
    ),
    ("copies and casts", ("aten::copy_", "aten::clone", "aten::contiguous", "aten::cat")),
    ("dropout masks (random draws, comparisons)", ("aten::random_", "aten::ge", "aten::lt")),
    ("softmax and its backward", ("aten::_softmax", "aten::_softmax_backward_data")),
    ("layer norm and its backward", ("aten::native_layer_norm", "aten::native_layer_norm_backward")),
    ("optimizer and gradient clipping", ("aten::_fused_adamw_", "aten::linalg_vector_norm", "aten::_foreach_*")),
    ("heap trimming (train.release_memory)", (TRIM_LABEL,)),
)
"""Operator kinds and the profiler event names that belong to each (exact; ``*`` ends a prefix). Any other
``aten::`` operator counts as ``element-wise and other operators``; any other event (autograd nodes, the
optimizer's Python step) as ``Python, autograd and dispatch``."""
ELEMENTWISE = "element-wise and other operators"
FRAMEWORK = "Python, autograd and dispatch"


def kind_of(name: str) -> str:
    """The row of the breakdown an event named ``name`` is counted in."""
    for kind, names in KINDS:
        if any(name == n or (n.endswith("*") and name.startswith(n[:-1])) for n in names):
            return kind
    return ELEMENTWISE if name.startswith("aten::") else FRAMEWORK


def timed_trim(trim: Callable[[], object]) -> Callable[[], object]:
    """``trim`` inside a profiler label, so that the breakdown has its own row for it."""

    def run() -> object:
        with record_function(TRIM_LABEL):
            return trim()

    return run


def to_bf16(batch: Any) -> Any:
    """A copy of ``batch`` with every floating tensor in bf16 (the bound row's input)."""
    batch = copy.copy(batch)
    for field in dataclasses.fields(batch):
        value = getattr(batch, field.name)
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            setattr(batch, field.name, value.to(torch.bfloat16))
    return batch


def faults_per_step(step: Callable[[], object], steps: int = 2) -> float:
    """Page faults per step of ``steps`` consecutive steps, after one more that settles the heap."""
    step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        step()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps


def breakdown(step: Callable[[], object], steps: int) -> dict[str, float]:
    """Milliseconds per step of each kind, from the operators' self time over ``steps`` profiled steps."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    out: dict[str, float] = {kind: 0.0 for kind, _ in KINDS} | {ELEMENTWISE: 0.0, FRAMEWORK: 0.0}
    for event in prof.key_averages():
        out[kind_of(event.key)] += event.self_cpu_time_total / 1000 / steps
    return out


def measure(rounds: int, profiled: int) -> dict[str, Any]:
    probe = gemm_probe("cpu")
    print(probe["line"], flush=True)
    bench_quag.trim_heap = timed_trim(bench_quag.trim_heap)  # type: ignore[assignment]  # labelled for the profiler
    model = paper_model().train()
    bf16_model = copy.deepcopy(model).to(torch.bfloat16)
    opt, bf16_opt = build_optimizer(model, 1e-5, 0.01), build_optimizer(bf16_model, 1e-5, 0.01)
    no_release = dataclasses.replace(BF16_PATH, release_memory=False)
    rows: list[dict[str, Any]] = []
    paths: list[dict[str, TimedPath]] = []
    for task in TASKS:
        batch = make_batch(task)
        fns = {
            "default": train_step_fn(model, opt, batch, BF16_PATH),
            "no_release": train_step_fn(model, opt, batch, no_release),
            "all_bf16": train_step_fn(
                bf16_model, bf16_opt, to_bf16(batch), dataclasses.replace(no_release, bf16=False)
            ),
        }
        flop = bench_quag.training_flops(model, trim_caption_padding(copy.copy(batch)))  # as the step runs it
        rows.append({"task": task, "gflop": flop / 1e9})
        paths.append({name: TimedPath(fn, rounds) for name, fn in fns.items()})
    for row, med, fns_ in zip(rows, interleaved_ms(paths), paths, strict=True):
        row.update(med)
        row["share_of_bf16_gemm"] = {
            name: row["gflop"] / (med[f"{name}_ms"] / 1000) / probe["bf16_gflops"] for name in fns_
        }
        row["faults_per_step"] = {name: faults_per_step(path.fn) for name, path in fns_.items()}
        print(f"  {row['task']}: " + ", ".join(f"{k} {v:.0f}" for k, v in med.items()), flush=True)
    for row, fns_ in zip(rows, paths, strict=True):
        row["breakdown_ms"] = breakdown(fns_["default"].fn, profiled)
    return {"torch": torch.__version__, "gemm_probe": probe, "rounds": rounds, "profiled_steps": profiled, "rows": rows}


PATH_LABELS = {
    "default": "bf16 (default on this CPU)",
    "no_release": "bf16, no release_memory",
    "all_bf16": "bound: everything bf16, no casts",
}


def render(payload: dict[str, Any]) -> str:
    rows = payload["rows"]
    lines = [
        f"torch {payload['torch']}, cpu; {payload['gemm_probe']['line']}",
        "",
        f"training step, ms (batch 5; median of {payload['rounds']} interleaved rounds)"
        "            " + "".join(f"{r['task'][:22]:>24}" for r in rows),
    ]
    for name, label in PATH_LABELS.items():
        cells = "".join(
            f"{r[f'{name}_ms']:>7.0f} {100 * r['share_of_bf16_gemm'][name]:>3.0f}% {r['faults_per_step'][name]:>8.0f}f"
            for r in rows
        )
        lines.append(f"{label:<67}{cells}")
    lines.append(
        "(each cell: ms per step, its matrix products' rate as a share of the probe's bf16 rate, page faults per step)"
    )
    lines.append("")
    lines.append(
        f"the default bf16 step by kind of work: operators' self time, ms per step over {payload['profiled_steps']} "
        "profiled steps (share of the profiled total)"
    )
    kinds = list(rows[0]["breakdown_ms"])
    for kind in [*kinds, "profiled total"]:
        cells = ""
        for r in rows:
            b = r["breakdown_ms"]
            total = sum(b.values())
            ms = total if kind == "profiled total" else b[kind]
            cells += f"{ms:>14.0f} ({100 * ms / total:>4.1f}%)"
        lines.append(f"{kind:<58}{cells}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds")
    parser.add_argument("--profiled", type=int, default=3, help="profiled steps per task")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", default="benchmarks/results/bench_step_breakdown.json")
    parser.add_argument("--write-docs", action="store_true", help="regenerate the tables in docs/benchmarks.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    payload = measure(args.rounds, args.profiled)
    text = render(payload)
    print()
    print(text)
    out = Path(args.out)
    atomic_write_json(out, payload)
    atomic_write_text(out.with_suffix(".txt"), text + "\n")
    print(f"written {out} and {out.with_suffix('.txt')}")
    if args.write_docs:
        command = "python benchmarks/bench_step_breakdown.py"
        body = f"Output of `{command}` ({out.with_suffix('.txt')}):\n\n```text\n{text}\n```"
        print(f"wrote {replace_marked_section(REPO / 'docs' / 'benchmarks.md', 'bench-step-breakdown', body)}")


if __name__ == "__main__":
    main()
