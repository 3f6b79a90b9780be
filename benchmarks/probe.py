"""The machine-speed probe printed beside every benchmark table: one square matrix product in fp32 and in bf16.

A table's ratios are measured within one run; the probe tells how fast the machine was during that run, so that
tables from different days or machines can be put side by side (a slower probe means a slower machine, not a
slower quag).
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

import torch

PROBE_N = 1024


def gemm_ms(dtype: torch.dtype, reps: int = 20, device: str = "cpu") -> float:
    """Median milliseconds of one ``PROBE_N`` x ``PROBE_N`` x ``PROBE_N`` matrix product in ``dtype``."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(PROBE_N, PROBE_N, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(PROBE_N, PROBE_N, generator=g).to(device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(reps):
        if device != "cpu":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        a @ b
        if device != "cpu":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def gemm_probe(device: str = "cpu") -> dict[str, Any]:
    """``{"fp32_ms", "bf16_ms", "fp32_gflops", "bf16_gflops", "threads", "load_average", "line"}``."""
    flop = 2 * PROBE_N**3
    fp32, bf16 = gemm_ms(torch.float32, device=device), gemm_ms(torch.bfloat16, device=device)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    out: dict[str, Any] = {
        "fp32_ms": fp32,
        "bf16_ms": bf16,
        "fp32_gflops": flop / fp32 / 1e6,
        "bf16_gflops": flop / bf16 / 1e6,
        "threads": torch.get_num_threads(),
        "load_average": load,
    }
    out["line"] = (
        f"GEMM probe ({PROBE_N}^3, {device}, {out['threads']} threads): fp32 {fp32:.2f} ms "
        f"({out['fp32_gflops']:.0f} GFLOP/s), bf16 {bf16:.2f} ms ({out['bf16_gflops']:.0f} GFLOP/s); "
        f"load average {load:.2f}"
    )
    return out
