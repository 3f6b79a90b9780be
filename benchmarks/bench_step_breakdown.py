"""Where a training step's (and a retrieval call's) time goes: QUAG at the paper setting on ``bench_quag.py``'s
shapes, by kind of work.

    python benchmarks/bench_step_breakdown.py                # prints the tables (~2 min on a 2-core CPU)
    python benchmarks/bench_step_breakdown.py --write-docs   # also rewrites them in docs/benchmarks.md

Three parts, one run, one process:

* **step time** per task, medians of interleaved rounds: quag's default bf16 step (``train.release_memory`` on),
  the same without the heap trimming, and a bound that no training setting reaches: every parameter, optimizer
  moment and activation in bf16, no autocast and no casts (bf16 weights lose small updates, so quag never trains
  this way). The rate of each row's matrix products (``bench_quag.training_flops``) is given as a share of the
  GEMM probe's bf16 rate, and the page faults per step (``ru_minflt``) beside it.
* **breakdown** of the default bf16 step: the self time of every operator in ``--profiled`` steps under
  ``torch.profiler``, summed by kind (:data:`KINDS`). The profiler's own overhead makes the total longer than
  an unprofiled step; the shares are what the table is for. Time spent in the kernel's page-fault handler is
  inside whichever operator touched the fresh page.
* **retrieval inference** (``predict_moments``, batch 5), after the training rows, with freed memory kept as
  ``quag infer`` runs: fp32, bf16 autocast (the default on this CPU) and the same all-bf16 bound, which for
  decoding is a setting one could run; how many of the 5 spans each path predicts as bf16 autocast does (random
  weights, so the spans themselves mean nothing); and the bf16 call by kind of work.

Nothing here is compared with another day's number.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import resource
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile, record_function
from torch.utils.flop_counter import FlopCounterMode

from quag.config import EvalConfig
from quag.data.collate import trim_caption_padding
from quag.heap import keep_freed_memory
from quag.inference.runner import predict_moments
from quag.models import HiRESTModel
from quag.tasks import TASKS
from quag.training.optim import build_optimizer

sys.path.insert(0, str(Path(__file__).parent))
import bench_quag  # noqa: E402
from bench_quag import (  # noqa: E402
    BF16_PATH,
    TimedPath,
    gemm_share,
    interleaved_ms,
    make_batch,
    paper_model,
    train_step_fn,
    write_outputs,
)
from probe import gemm_probe  # noqa: E402

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
            name: gemm_share(row["gflop"], med[f"{name}_ms"], probe["bf16_gflops"]) for name in fns_
        }
        row["faults_per_step"] = {name: faults_per_step(path.fn) for name, path in fns_.items()}
        print(f"  {row['task']}: " + ", ".join(f"{k} {v:.0f}" for k, v in med.items()), flush=True)
    for row, fns_ in zip(rows, paths, strict=True):
        row["breakdown_ms"] = breakdown(fns_["default"].fn, profiled)
    inference = measure_inference(model.eval(), bf16_model.eval(), probe, 2 * rounds, profiled)
    return {
        "torch": torch.__version__,
        "gemm_probe": probe,
        "rounds": rounds,
        "profiled_steps": profiled,
        "rows": rows,
        "inference": inference,
    }


def measure_inference(
    model: HiRESTModel, bf16_model: HiRESTModel, probe: dict[str, Any], rounds: int, profiled: int
) -> dict[str, Any]:
    """Retrieval inference (``predict_moments``), as ``quag infer`` runs it (freed memory kept): fp32, bf16
    autocast (the default on this CPU) and the all-bf16 bound, interleaved; the spans of each against bf16
    autocast's; the bf16 call by kind of work."""
    print(keep_freed_memory(), flush=True)
    batch, cfg = make_batch("moment_retrieval"), EvalConfig()
    batch16 = to_bf16(batch)

    def call(m: HiRESTModel, b: Any, bf16: bool) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return predict_moments(m, b, cfg)

        return run

    fns = {
        "fp32": call(model, batch, False),
        "bf16": call(model, batch, True),
        "all_bf16": call(bf16_model, batch16, False),
    }
    counter = FlopCounterMode(display=False)
    with counter:
        fns["fp32"]()
    gflop = counter.get_total_flops() / 1e9
    med = interleaved_ms([{name: TimedPath(fn, rounds) for name, fn in fns.items()}])[0]
    spans = {name: fn() for name, fn in fns.items()}
    print("  retrieval inference: " + ", ".join(f"{k} {v:.0f}" for k, v in med.items()), flush=True)
    return {
        "gflop": gflop,
        "rounds": rounds,
        **med,
        "share_of_bf16_gemm": {name: gemm_share(gflop, med[f"{name}_ms"], probe["bf16_gflops"]) for name in fns},
        "same_spans_as_bf16": {name: int((spans[name] == spans["bf16"]).all(dim=1).sum()) for name in fns},
        "videos": len(spans["bf16"]),
        "breakdown_ms": breakdown(fns["bf16"], profiled),
    }


INFER_LABELS = {
    "fp32": "fp32",
    "bf16": "bf16 autocast (default on this CPU)",
    "all_bf16": "bound: everything bf16, no casts",
}

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
    lines += breakdown_lines([r["breakdown_ms"] for r in rows])
    inf = payload["inference"]
    lines += [
        "",
        f"retrieval inference, ms (batch 5, {inf['gflop']:.0f} GFLOP; median of {inf['rounds']} interleaved rounds; "
        "freed memory kept)        ms  % GEMM  spans as bf16",
    ]
    for name, label in INFER_LABELS.items():
        share = 100 * inf["share_of_bf16_gemm"][name]
        same = f"{inf['same_spans_as_bf16'][name]}/{inf['videos']}"
        lines.append(f"{label:<96}{inf[f'{name}_ms']:>6.0f}{share:>7.0f}%{same:>15}")
    lines.append("(% GEMM: the call's matrix products' rate as a share of the probe's bf16 rate)")
    lines.append(
        f"the bf16 call by kind of work: operators' self time, ms per call over {payload['profiled_steps']} profiled "
        "calls (share of the profiled total)"
    )
    lines += breakdown_lines([inf["breakdown_ms"]])
    return "\n".join(lines)


def breakdown_lines(columns: list[dict[str, float]]) -> list[str]:
    """One line per kind of work (and the total): ms and share of each column's profiled total."""
    lines = []
    for kind in [*columns[0], "profiled total"]:
        cells = ""
        for b in columns:
            total = sum(b.values())
            ms = total if kind == "profiled total" else b[kind]
            cells += f"{ms:>14.0f} ({100 * ms / total:>4.1f}%)"
        lines.append(f"{kind:<58}{cells}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds")
    parser.add_argument("--profiled", type=int, default=3, help="profiled steps per task")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", default="benchmarks/results/bench_step_breakdown.json")
    parser.add_argument("--write-docs", action="store_true", help="regenerate the tables in docs/benchmarks.md")
    parser.add_argument("--render", metavar="JSON", help="print (and --write-docs) the tables of an earlier run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    payload = json.loads(Path(args.render).read_text()) if args.render else measure(args.rounds, args.profiled)
    out = Path(args.render or args.out)
    command = "python benchmarks/bench_step_breakdown.py"
    write_outputs(payload, render(payload), out, args.write_docs, command, marker="bench-step-breakdown")


if __name__ == "__main__":
    main()
