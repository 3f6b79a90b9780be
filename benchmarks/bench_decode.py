"""Decoding a whole split with a trained checkpoint: time per task, segmentation rounds, bf16 vs fp32 agreement.

    python benchmarks/bench_decode.py                                   # the demo's checkpoint on HiREST-sim val
    python benchmarks/bench_decode.py --checkpoint runs/X/checkpoints/best --split train --data-root data/hirest-sim
    python benchmarks/bench_decode.py --device cuda                     # the same on a GPU

Four decoding paths over every moment-retrieval (MR), moment-segmentation (MS) and step-captioning (SC) example of
the split, in one run (each path is timed ``--repeats`` times, interleaved, and the median is kept):

* ``naive``: one example at a time in dataset order, fp32; MS by the authors' island algorithm (20 rounds per
  video, the whole model run in every round); SC beam search without the key/value cache;
* ``fast, islands``: batches of ``eval.batch_size`` grouped by length, fp32; MS by the island algorithm with the
  front end run once per video and finished videos retired; SC with the cache;
* ``fast, fp32``: the defaults with ``eval.precision=fp32``: MS decoded one boundary at a time until the model
  predicts the moment end (``eval.segmentation_decoding=sequential``);
* ``fast, bf16``: the same under bf16 autocast (the default on CPUs with native bf16).

``naive`` and ``fast, islands`` must give the same predictions (checked: the ``same as naive`` column). The
second table gives how often bf16 and fp32 decoding agree (same MR span, same MS boundaries, same caption) and
the metric differences. On the CPU every path runs with freed memory kept for reuse, as ``quag infer`` runs
(:func:`quag.heap.keep_freed_memory`; the first line says so). Writes ``benchmarks/results/bench_decode.{json,txt}``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from quag.checkpoint import load_checkpoint
from quag.config import EvalConfig
from quag.data import annotations as A
from quag.data.collate import Batch
from quag.data.datasets import build_datasets, make_store
from quag.evaluation.selection import evaluate_task_predictions
from quag.heap import keep_freed_memory
from quag.inference import runner
from quag.inference.segmentation import decode_islands_naive, postprocess_boundaries
from quag.io import atomic_write_json, atomic_write_text, replace_marked_section
from quag.models import HiRESTModel
from quag.tasks import TASKS

sys.path.insert(0, str(Path(__file__).parent))
from probe import gemm_probe  # noqa: E402

METRICS = {
    "moment_retrieval": ("R@0.5", "R@0.7"),
    "moment_segmentation": ("recall@0.5", "precision@0.5"),
    "step_captioning": ("CIDEr",),
}


def naive_boundaries(model: HiRESTModel, batch: Batch, cfg: EvalConfig) -> list[list[int]]:
    """The authors' segmentation loop: every round runs the whole model on one video (no cached front end)."""
    assert batch.moment_frames is not None

    def logits_fn(rows: torch.Tensor, region: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
        front = model.encode_front(
            batch.video[rows], batch.transcript[rows], batch.query_embedding[rows], batch.video_mask[rows]
        ).features
        return model.segment_logits(model.encode_context(front, batch.video_mask[rows], region, boundary))

    islands = decode_islands_naive(
        logits_fn, batch.moment_frames, batch.video_mask.sum(dim=1), cfg.segmentation_rounds, cfg.segmentation_threshold
    )
    return [
        postprocess_boundaries(isl, ms, me, cfg.segmentation_min_gap, cfg.segmentation_emit_last)
        for isl, (ms, me) in zip(islands, batch.moment_frames.tolist(), strict=True)
    ]


@contextlib.contextmanager
def naive_path() -> Iterator[None]:
    """Swap the runner's segmentation and captioning decoders for the naive ones, and batch in dataset order."""
    saved = runner.predict_boundaries, runner.predict_captions, runner._loader
    loader = saved[2]
    runner.predict_boundaries = naive_boundaries  # type: ignore[assignment]
    runner.predict_captions = functools.partial(saved[1], use_cache=False)  # type: ignore[assignment]
    runner._loader = lambda ds, bs, idx, workers=0, by_length=True: loader(ds, bs, idx, workers, by_length=False)  # type: ignore[assignment]
    try:
        yield
    finally:
        runner.predict_boundaries, runner.predict_captions, runner._loader = saved


class RoundCounter:
    """Counts how many times each segmentation example is scored (rounds per video)."""

    def __init__(self) -> None:
        self.calls = 0

    @contextlib.contextmanager
    def counting(self, model: HiRESTModel) -> Iterator[None]:
        original = model.segment_logits

        def counted(h: torch.Tensor) -> torch.Tensor:
            self.calls += h.shape[0]
            return original(h)

        model.segment_logits = counted  # type: ignore[method-assign]
        try:
            yield
        finally:
            del model.segment_logits


PATHS: dict[str, dict[str, Any]] = {
    "naive": {"eval": {"batch_size": 1, "segmentation_decoding": "reference", "precision": "fp32"}, "naive": True},
    "fast, islands": {"eval": {"segmentation_decoding": "reference", "precision": "fp32"}},
    "fast, fp32": {"eval": {"segmentation_decoding": "sequential", "precision": "fp32"}},
    "fast, bf16": {"eval": {"segmentation_decoding": "sequential", "precision": "bf16"}},
}


def decode_split(
    model: HiRESTModel,
    datasets: dict,
    cfg: EvalConfig,
    path: dict[str, Any],
    counter: RoundCounter,
    device: torch.device,
) -> tuple[dict[str, float], dict[str, Any], float]:
    """Seconds per task, official predictions per task, MS rounds per video."""
    ecfg = dataclasses.replace(cfg, **path["eval"])
    seconds, preds = {}, {}
    counter.calls = 0
    with naive_path() if path.get("naive") else contextlib.nullcontext(), counter.counting(model):
        for task in TASKS:
            t0 = time.perf_counter()
            preds[task] = runner.predict_task(model, datasets[task], ecfg, device).official
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds[task] = time.perf_counter() - t0
    return seconds, preds, counter.calls / max(1, len(datasets["moment_segmentation"]))


def agreement(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    """Share (%) of identical MR spans, MS boundary lists and SC captions between two decodings."""
    mr_a = [(q, v, x["bounds"]) for q, vs in a["moment_retrieval"].items() for v, x in vs.items()]
    mr_same = [b["moment_retrieval"][q][v]["bounds"] == bounds for q, v, bounds in mr_a]
    ms_a = a["moment_segmentation"]
    ms_same = [b["moment_segmentation"][v]["pred_bounds"] == x["pred_bounds"] for v, x in ms_a.items()]
    caps_a = [c["sentence"] for v in sorted(a["step_captioning"]) for c in a["step_captioning"][v]["captions"]]
    caps_b = [c["sentence"] for v in sorted(b["step_captioning"]) for c in b["step_captioning"][v]["captions"]]
    sc_same = [x == y for x, y in zip(caps_a, caps_b, strict=True)]
    return {
        "moment_retrieval": 100 * sum(mr_same) / len(mr_same),
        "moment_segmentation": 100 * sum(ms_same) / len(ms_same),
        "step_captioning": 100 * sum(sc_same) / len(sc_same),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="runs/sim_quag_cpu/checkpoints/best")
    parser.add_argument("--split", default="val")
    parser.add_argument("--data-root", help="default: the checkpoint's data.root")
    parser.add_argument("--repeats", type=int, default=3, help="timed decodings of the split per path")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--out", help="default: benchmarks/results/bench_decode.json (bench_decode_<split>.json)")
    parser.add_argument("--write-docs", action="store_true", help="regenerate the split's table in docs/inference.md")
    args = parser.parse_args()

    device = torch.device(args.device)
    heap = keep_freed_memory() if device.type == "cpu" else ""  # as quag infer
    model, cfg, _, _ = load_checkpoint(args.checkpoint, device)
    data_cfg = dataclasses.replace(cfg.data, root=args.data_root or cfg.data.root)
    store = make_store(data_cfg)
    if cfg.model.visual_dim == 0:
        store.drop_visual()
    videos = A.load_split(data_cfg.root, args.split)
    datasets = build_datasets(data_cfg, args.split, list(TASKS), training=False, store=store, videos=videos)
    probe = gemm_probe(args.device)
    sizes = {t: len(datasets[t]) for t in TASKS}
    print(
        f"{args.checkpoint} on {data_cfg.root} {args.split}: {sizes}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; {probe['line']}" + (f"; {heap}" if heap else ""),
        flush=True,
    )

    counter = RoundCounter()
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in PATHS}
    preds: dict[str, dict[str, Any]] = {}
    rounds: dict[str, float] = {}
    for r in range(args.repeats):  # interleaved: every path once per repeat
        for name, path in PATHS.items():
            seconds, preds[name], rounds[name] = decode_split(model, datasets, cfg.eval, path, counter, device)
            runs[name].append(seconds)
            print(
                f"  repeat {r + 1}/{args.repeats} {name}: " + ", ".join(f"{t} {s:.2f}s" for t, s in seconds.items()),
                flush=True,
            )

    rows: list[dict[str, Any]] = []
    for name in PATHS:
        med = {t: statistics.median(run[t] for run in runs[name]) for t in TASKS}
        metrics = evaluate_task_predictions(preds[name], videos, ("CIDEr",))
        rows.append(
            {
                "path": name,
                "seconds": med,
                "total_seconds": sum(med.values()),
                "ms_rounds_per_video": rounds[name],
                "metrics": {f"{t}/{m}": metrics[f"{t}/{m}"] for t, ms in METRICS.items() for m in ms},
                "same_as_naive": preds[name] == preds["naive"],
            }
        )
    naive_total = rows[0]["total_seconds"]
    agree = agreement(preds["fast, fp32"], preds["fast, bf16"])
    fp32_m, bf16_m = rows[2]["metrics"], rows[3]["metrics"]

    lines = [
        f"decoding {args.split} of {data_cfg.root} with {args.checkpoint}: MR {sizes['moment_retrieval']}, "
        f"MS {sizes['moment_segmentation']}, SC {sizes['step_captioning']} examples; median of {args.repeats} "
        f"interleaved runs; {probe['line']}" + (f"; {heap}" if heap else ""),
        "",
        "| path | MR s | MS s | SC s | total s | x naive | MS rounds / video | same as naive | "
        + " | ".join(k.split("/")[1] for k in fp32_m)
        + " |",
        "|---|---:|---:|---:|---:|---:|---:|---|" + "---:|" * len(fp32_m),
    ]
    for row in rows:
        s = row["seconds"]
        lines.append(
            f"| {row['path']} | {s['moment_retrieval']:.2f} | {s['moment_segmentation']:.2f} | "
            f"{s['step_captioning']:.2f} | {row['total_seconds']:.2f} | {naive_total / row['total_seconds']:.1f}x | "
            f"{row['ms_rounds_per_video']:.1f} | {'yes' if row['same_as_naive'] else 'no'} | "
            + " | ".join(f"{v:.2f}" for v in row["metrics"].values())
            + " |"
        )
    lines += [
        "",
        "| bf16 vs fp32 (fast path) | MR spans | MS boundaries | SC captions |",
        "|---|---:|---:|---:|",
        f"| identical | {agree['moment_retrieval']:.1f}% | {agree['moment_segmentation']:.1f}% | "
        f"{agree['step_captioning']:.1f}% |",
        "",
        "metric change bf16 - fp32: " + ", ".join(f"{k} {bf16_m[k] - fp32_m[k]:+.2f}" for k in fp32_m),
    ]
    text = "\n".join(lines)
    print()
    print(text)
    default = "bench_decode.json" if args.split == "val" else f"bench_decode_{args.split}.json"
    out = Path(args.out or f"benchmarks/results/{default}")
    atomic_write_json(
        out,
        {
            "checkpoint": args.checkpoint,
            "data_root": str(data_cfg.root),
            "split": args.split,
            "examples": sizes,
            "repeats": args.repeats,
            "gemm_probe": probe,
            "rows": rows,
            "bf16_vs_fp32_identical_percent": agree,
        },
    )
    atomic_write_text(out.with_suffix(".txt"), text + "\n")
    print(f"written {out} and {out.with_suffix('.txt')}")
    if args.write_docs:
        doc = Path(__file__).resolve().parents[1] / "docs" / "inference.md"
        print(f"wrote {replace_marked_section(doc, f'decode-{args.split}', text)}")


if __name__ == "__main__":
    main()
