"""glibc mmap-threshold pinning (train.release_memory)."""

from __future__ import annotations

import subprocess
import sys

import pytest

# In a fresh process: free a 256 MiB tensor, then allocate and free 125 MiB of 256 KiB tensors. Without pinning,
# glibc raises its mmap threshold after the first free and serves the small tensors from the heap, which keeps
# the memory after they are freed. Prints the resident growth in MiB.
_CHILD = """
import sys, torch
from quag.training.memory import pin_mmap_threshold
if sys.argv[1] == "1":
    assert pin_mmap_threshold()
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
base = rss()
for _ in range(2):
    x = torch.ones(64 * 2**20)
    del x
    y = [torch.ones(2**16) for _ in range(500)]
    del y
print(rss() - base)
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_freed_tensors_return_to_the_system_when_pinned() -> None:
    growth = {}
    for flag in ("0", "1"):
        out = subprocess.run([sys.executable, "-c", _CHILD, flag], capture_output=True, text=True, check=True)
        growth[flag] = float(out.stdout.strip())
    assert growth["1"] < 32, growth
    assert growth["0"] > growth["1"] + 64, growth  # the default allocator keeps the freed blocks
