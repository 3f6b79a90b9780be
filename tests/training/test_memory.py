"""Returning freed heap memory before backward (train.release_memory)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import benchmark

# In a fresh process: allocate 200 MiB of 1 MiB tensors (below glibc's mmap threshold once it has risen, so
# they come from the heap), keep every 20th, free the rest; optionally trim. Prints the resident growth in MiB.
_CHILD = """
import sys, torch
from quag.training.memory import trim_heap
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
