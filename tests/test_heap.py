"""The C heap's policy for freed memory: trimmed before backward (train.release_memory), kept for inference."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, benchmark

# In a fresh process: allocate 200 MiB of 1 MiB tensors (below glibc's mmap threshold once it has risen, so
# they come from the heap), keep every 20th, free the rest; optionally trim. Prints the resident growth in MiB.
_CHILD = """
import sys, torch
from quag.heap import trim_heap
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
x = torch.ones(4 * 2**20)  # 16 MiB, mmapped: freeing it raises the mmap threshold to its size
del x
base = rss()
blocks = [torch.ones(2**18) for _ in range(200)]
kept = blocks[::20]
del blocks
if sys.argv[1] == "1":
    assert trim_heap()
print(rss() - base)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_trim_returns_the_free_heap_pages() -> None:
    growth = {}
    for flag in ("0", "1"):
        out = subprocess.run([sys.executable, "-c", _CHILD, flag], capture_output=True, text=True, check=True)
        growth[flag] = float(out.stdout.strip())
    assert growth["1"] < 40, growth  # the 10 kept blocks (10 MiB) and little else
    assert growth["0"] > growth["1"] + 100, growth  # without the trim the freed blocks stay resident


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_private_peak_sees_a_short_lived_allocation() -> None:
    """bench_quag's private-memory peak: a 256 MiB tensor that lives 50 ms shows up, and nothing else is added."""
    import time

    import torch

    bench_quag = benchmark("bench_quag")
    with bench_quag.PrivatePeak() as before:
        time.sleep(0.02)
    with bench_quag.PrivatePeak() as during:
        x = torch.ones(64 * 2**20)  # 256 MiB, written: resident
        time.sleep(0.05)
        del x
        time.sleep(0.02)
    assert before.peak_gib is not None and during.peak_gib is not None
    assert 0.2 < during.peak_gib - before.peak_gib < 0.35, (before.peak_gib, during.peak_gib)


# In a fresh process: optionally keep freed memory, then run 30 rounds of four feed-forward blocks at the paper
# setting's width (1,400 frames, 768 -> 3,072 -> 768) under bf16 autocast on 2 threads. Prints the minor page
# faults of the last 20 rounds and the policy line.
_KEEP_CHILD = """
import resource, sys, torch
import torch.nn.functional as F
from quag.heap import keep_freed_memory
line = keep_freed_memory() if sys.argv[1] == "1" else "-"
torch.manual_seed(0)
torch.set_num_threads(2)
w1, w2 = torch.randn(3072, 768) / 30, torch.randn(768, 3072) / 60
for i in range(30):
    if i == 10:
        start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.randn(1400, 768)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for _ in range(4):
            x = F.linear(F.linear(x, w1).relu_(), w2) + x
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
print(line)
"""


def _allocator_env(**extra: str) -> dict[str, str]:
    """This environment without the allocator settings that :func:`keep_freed_memory` defers to, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env.pop("QUAG_KEEP_FREED_MEMORY", None)
    return {**env, **extra}


def _keep_child(flag: str, **env: str) -> tuple[int, str]:
    cmd = [sys.executable, "-c", _KEEP_CHILD, flag]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=_allocator_env(**env))
    faults, line = out.stdout.strip().splitlines()
    return int(faults), line


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_kept_memory_is_reused_without_page_faults() -> None:
    # glibc's default hands freed blocks back and faults them in again: 500-90,000 faults in 20 rounds here (most
    # runs over 10,000), depending on which thread freed what; kept, the blocks of the first rounds are reused (0,
    # or about 1,150 where the heap still grows once)
    faults, line = _keep_child("1")
    assert line == "freed memory: kept for reuse (glibc, blocks up to 32 MiB)", line
    assert faults < 2500, faults


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_keep_defers_to_the_users_settings() -> None:
    _, line = _keep_child("1", QUAG_KEEP_FREED_MEMORY="0")
    assert line == "freed memory: glibc's default (QUAG_KEEP_FREED_MEMORY=0)"
    _, line = _keep_child("1", MALLOC_ARENA_MAX="2")
    assert line == "freed memory: as MALLOC_ARENA_MAX sets it"
    _, line = _keep_child("1", MALLOC_ARENA_MAX="2", GLIBC_TUNABLES="glibc.malloc.tcache_count=0")
    assert line == "freed memory: as GLIBC_TUNABLES, MALLOC_ARENA_MAX set it"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_decoding_commands_keep_freed_memory(sim_root: Path, tmp_path: Path) -> None:
    """`quag infer` (a fresh process: the policy is process-wide) says it keeps freed memory; `quag data-stats`,
    which is not a decoding command, does not touch it."""
    env = _allocator_env()
    args = ["infer", "--task", "video_retrieval", "--data", str(sim_root), "--split", "val", "--out", str(tmp_path)]
    out = subprocess.run([sys.executable, "-m", "quag", *args], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "freed memory: kept for reuse (glibc, blocks up to 32 MiB)" in out.stderr
    args = ["data-stats", "--data", str(sim_root)]
    out = subprocess.run([sys.executable, "-m", "quag", *args], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "freed memory" not in out.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_bench_quag_heap_rows() -> None:
    """bench_quag's inference heap comparison: one fresh process per policy, and the rendered ratio."""
    bench_quag = benchmark("bench_quag")
    heap = bench_quag.measure_heap_policies(threads=1, rounds=1, calls=1)
    assert set(heap) == {"default", "keep"}
    assert heap["keep"]["policy"] == "freed memory: kept for reuse (glibc, blocks up to 32 MiB)"
    assert heap["default"]["policy"] == "glibc's default"
    assert all(h["ms"] > 0 and h["peak_gib"] > 0.1 and len(h["runs"]) == 1 for h in heap.values())
    payload = json.loads((REPO / "benchmarks" / "results" / "bench_quag.json").read_text())
    payload["inference_heap_policies"] = heap
    text = bench_quag.render(payload)
    assert f"kept against default: {heap['default']['ms'] / heap['keep']['ms']:.2f}x as fast" in text
