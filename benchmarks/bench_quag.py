"""QUAG at the paper setting on HiREST shapes: training and inference time, FLOPs, peak memory (CPU or CUDA).

    python benchmarks/bench_quag.py                 # full run (~10 min on a 2-core CPU)
    python benchmarks/bench_quag.py --quick         # fewer repeats, no 48-step naive captioning

Shapes: batch 5, 280 one-second frames (1024-d EVA-CLIP, 384-d MiniLM, 1024-d query), 20-frame caption windows,
48 caption tokens, 3 beams; random weights (seed 0). Every fast path is timed beside its naive variant in the same
run and their outputs are compared (they must be identical). The "authors" column is the authors' QUAG code measured
on the same 2-core CPU (ms per batch of 5; its training steps include ~430 ms of EVA-CLIP text tower per step).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from quag.config import ModelConfig
from quag.data.collate import Batch
from quag.data.tokenizer import SEP_ID
from quag.inference.runner import predict_boundaries, predict_moments
from quag.inference.segmentation import decode_islands, decode_islands_naive
from quag.models import build_model
from quag.models.generation import generate_beam
from quag.models.losses import total_loss
from quag.training.memory import pin_mmap_threshold
from quag.training.optim import build_optimizer

B, T, WINDOW, TOKENS, BEAMS = 5, 280, 20, 48, 3
AUTHORS_MS = {
    "train moment_retrieval": 2159,
    "train moment_segmentation": 2084,
    "train step_captioning": 1104,
    "infer moment_retrieval": 827,
    "infer segmentation (20 rounds)": 9498,
    "infer captioning (6 steps)": 858,
    "infer captioning (48 steps)": 12486,
}
AUTHORS_PEAK_GIB = 2.6


def make_batch(task: str, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    t = WINDOW if task == "step_captioning" else T
    video = torch.nn.functional.normalize(torch.randn(B, t, 1024, generator=g), dim=-1)
    transcript = torch.nn.functional.normalize(torch.randn(B, t, 384, generator=g), dim=-1)
    transcript[:, ::4] = 0  # silent seconds
    mask = torch.ones(B, t, dtype=torch.bool)
    batch = Batch(
        task=task,
        video=video,
        transcript=transcript,
        query_embedding=torch.randn(B, 1024, generator=g),
        video_mask=mask,
        moment_mask=mask.clone(),
    )
    if task == "moment_retrieval":
        batch.start_target = torch.randint(0, T // 2, (B,), generator=g)
        batch.end_target = batch.start_target + torch.randint(1, T // 2, (B,), generator=g)
    elif task == "moment_segmentation":
        starts = torch.randint(10, 100, (B,), generator=g)
        ends = starts + torch.randint(60, 170, (B,), generator=g)
        idx = torch.arange(T)
        batch.moment_mask = (idx[None] >= starts[:, None]) & (idx[None] <= ends[:, None])
        batch.boundary_mask = idx[None] == starts[:, None]
        batch.segment_target = starts + 15
        batch.moment_frames = torch.stack([starts, ends], dim=1)
    else:
        ids = torch.zeros(B, TOKENS, dtype=torch.long)
        ids[:, 0] = 101
        ids[:, 1:11] = torch.randint(1000, 30000, (B, 10), generator=g)
        targets = torch.zeros_like(ids)
        targets[:, :10] = ids[:, 1:11]
        targets[:, 10] = SEP_ID
        batch.caption_ids, batch.caption_targets, batch.caption_mask = ids, targets, ids != 0
    return batch


def timed(fn: Callable[[], object], repeats: int, warmup: int) -> float:
    """Median wall time of ``fn`` in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def matmul_rate(dtype: torch.dtype, n: int = 2048, reps: int = 8) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    ms = timed(lambda: a @ b, reps, 2)
    return 2 * n**3 / (ms / 1000) / 1e9  # GFLOP/s


def paper_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig())  # defaults = the paper setting (D 768, 12 heads, 2 layers, query 1024)


def train_step_fn(model: torch.nn.Module, opt: torch.optim.Optimizer, batch: Batch, bf16: bool) -> Callable[[], None]:
    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            losses = total_loss(batch.task, model(batch), batch, 0.0003)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        opt.zero_grad(set_to_none=True)  # free the gradients before the next forward pass (as the trainer)

    return step


def training_flops(model: torch.nn.Module, batch: Batch) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        total_loss(batch.task, model(batch), batch, 0.0003)["loss"].backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def peak_memory_child(steps: int, release_memory: bool) -> None:
    """Run in a fresh process: training steps over the three tasks; prints the peak RSS in GiB and ms per step."""
    if release_memory:
        pin_mmap_threshold()
    model = paper_model().train()
    opt = build_optimizer(model, 1e-5, 0.01)
    batches = [make_batch(t) for t in ("moment_retrieval", "moment_segmentation", "step_captioning")]
    train_step_fn(model, opt, batches[0], bf16=False)()  # warm-up, not timed
    start = time.perf_counter()
    for i in range(1, steps):
        train_step_fn(model, opt, batches[i % 3], bf16=False)()
    ms = 1000 * (time.perf_counter() - start) / (steps - 1)
    print(json.dumps({"peak_gib": peak_rss_gib(), "ms_per_step": ms}))


def peak_rss_gib() -> float:
    """This process's peak resident memory. ``VmHWM`` belongs to the process's own address space; ``ru_maxrss``
    would also carry the parent's peak across fork + exec (Linux keeps it), i.e. this benchmark's 1.9 GiB."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def measure_peak_memory(threads: int, release_memory: bool) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--memory-child", "10", "--threads", str(threads)]
    child = subprocess.run(cmd + (["--release-memory"] if release_memory else []), capture_output=True, text=True)
    if child.returncode:
        raise RuntimeError(f"memory child failed:\n{child.stderr[-2000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", default="benchmarks/results/bench_quag.json")
    parser.add_argument("--memory-child", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--release-memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_child:
        peak_memory_child(args.memory_child, args.release_memory)
        return
    reps, warm = (3, 1) if args.quick else (5, 2)
    rows: list[dict] = []
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {args.threads} threads, load average at start {load:.2f}")
    fp32_rate, bf16_rate = matmul_rate(torch.float32), matmul_rate(torch.bfloat16)
    print(f"measured matmul rate (2048^3): fp32 {fp32_rate:.0f} GFLOP/s, bf16 {bf16_rate:.0f} GFLOP/s")

    model = paper_model()
    opt = build_optimizer(model, 1e-5, 0.01)
    for task in ("moment_retrieval", "moment_segmentation", "step_captioning"):
        batch = make_batch(task)
        model.train()
        flops = training_flops(model, batch)
        fp32 = timed(train_step_fn(model, opt, batch, False), reps, warm)
        bf16 = timed(train_step_fn(model, opt, batch, True), reps, warm)
        name = f"train {task}"
        rows.append(
            {
                "name": name,
                "ms": fp32,
                "ms_bf16": bf16,
                "gflop": flops / 1e9,
                "fraction_of_fp32_matmul": flops / (fp32 / 1000) / 1e9 / fp32_rate,
                "authors_ms": AUTHORS_MS[name],
            }
        )

    model.eval()
    with torch.no_grad():
        from quag.config import EvalConfig

        cfg = EvalConfig()
        mr = make_batch("moment_retrieval")
        rows.append(
            {
                "name": "infer moment_retrieval",
                "ms": timed(lambda: predict_moments(model, mr, cfg), reps, warm),
                "authors_ms": AUTHORS_MS["infer moment_retrieval"],
            }
        )

        ms = make_batch("moment_segmentation")
        lengths = ms.video_mask.sum(1)
        front = model.encode_front(ms.video, ms.transcript, ms.query_embedding, ms.video_mask).features

        def cached_logits(rows_: torch.Tensor, region: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
            return model.segment_logits(model.encode_context(front[rows_], ms.video_mask[rows_], region, boundary))

        def naive_logits(rows_: torch.Tensor, region: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
            f = model.encode_front(
                ms.video[rows_], ms.transcript[rows_], ms.query_embedding[rows_], ms.video_mask[rows_]
            ).features
            return model.segment_logits(model.encode_context(f, ms.video_mask[rows_], region, boundary))

        def fast_all_rounds() -> list:
            return decode_islands(cached_logits, ms.moment_frames, lengths, 20, 0.5, early_stop=False)

        def naive() -> list:
            return decode_islands_naive(naive_logits, ms.moment_frames, lengths, 20, 0.5)

        same = fast_all_rounds() == naive()
        rows.append(
            {
                "name": "infer segmentation (20 rounds)",
                "ms": timed(fast_all_rounds, reps, warm),
                "naive_ms": timed(naive, 1 if args.quick else 2, 0),
                "identical": same,
                "authors_ms": AUTHORS_MS["infer segmentation (20 rounds)"],
            }
        )
        rows.append(
            {
                "name": "infer segmentation (early stop)",
                "ms": timed(lambda: predict_boundaries(model, ms, cfg), reps, warm),
            }
        )

        sc = make_batch("step_captioning")
        h = model.encode_context(
            model.encode_front(sc.video, sc.transcript, sc.query_embedding, sc.video_mask).features,
            sc.video_mask,
            sc.moment_mask,
            None,
        )
        with torch.no_grad():
            model.decoder.output_bias[SEP_ID] = -1e4  # never stop early: exactly max_len decoding steps
        for steps in (6, 48):

            def cached(steps: int = steps) -> list:
                return generate_beam(model.decoder, h, sc.video_mask, BEAMS, steps, use_cache=True)

            def uncached(steps: int = steps) -> list:
                return generate_beam(model.decoder, h, sc.video_mask, BEAMS, steps, use_cache=False)

            name = f"infer captioning ({steps} steps)"
            row = {"name": name, "ms": timed(cached, reps, warm), "authors_ms": AUTHORS_MS[name]}
            if steps == 6 or not args.quick:
                row["naive_ms"] = timed(uncached, 1 if (args.quick or steps == 48) else reps, 0)
                row["identical"] = cached() == uncached()
            rows.append(row)

    memory = {
        "default allocator": measure_peak_memory(args.threads, release_memory=False),
        "train.release_memory (mmap threshold pinned)": measure_peak_memory(args.threads, release_memory=True),
    }

    print()
    print(
        f"{'measurement':<34}{'ours ms':>10}{'bf16 ms':>10}{'naive ms':>10}{'x naive':>9}{'authors':>9}"
        f"{'x auth.':>9}{'x bf16':>8}{'GFLOP':>8}{'% peak':>8}  same"
    )
    for r in rows:

        def f(v: float | None, fmt: str = "{:.0f}") -> str:
            return fmt.format(v) if v is not None else "-"

        x_naive = r["naive_ms"] / r["ms"] if "naive_ms" in r else None
        x_auth = r["authors_ms"] / r["ms"] if "authors_ms" in r else None
        x_bf16 = r["authors_ms"] / r["ms_bf16"] if "ms_bf16" in r and "authors_ms" in r else None
        frac = 100 * r["fraction_of_fp32_matmul"] if "fraction_of_fp32_matmul" in r else None
        same = {True: "yes", False: "NO"}.get(r.get("identical"), "")
        print(
            f"{r['name']:<34}{f(r['ms']):>10}{f(r.get('ms_bf16')):>10}{f(r.get('naive_ms')):>10}"
            f"{f(x_naive, '{:.1f}x'):>9}{f(r.get('authors_ms')):>9}{f(x_auth, '{:.1f}x'):>9}"
            f"{f(x_bf16, '{:.1f}x'):>8}{f(r.get('gflop'), '{:.0f}'):>8}{f(frac, '{:.0f}%'):>8}  {same}"
        )
    print()
    print(f"{'peak training memory, 10 steps':<48}{'peak GiB':>10}{'ms/step':>10}{'authors GiB':>13}")
    for name, m in memory.items():
        print(f"{name:<48}{m['peak_gib']:>10.2f}{m['ms_per_step']:>10.0f}{AUTHORS_PEAK_GIB:>13.1f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "threads": args.threads,
                "load_average": load,
                "matmul_gflops": {"fp32": fp32_rate, "bf16": bf16_rate},
                "rows": rows,
                "peak_training_memory": memory,
            },
            indent=2,
        )
    )
    print(f"written {out}")


if __name__ == "__main__":
    main()
