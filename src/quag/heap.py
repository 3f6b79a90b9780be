"""What the C heap does with freed memory (glibc): hand it back to the system, or keep it for the next call.

Tensors on the CPU live in the C heap. By default glibc hands large freed blocks back to the system (blocks above
its mmap threshold are unmapped when freed; free pages at the top of the heap are trimmed), and the next pass
touches fresh pages again: one page fault per 4 KiB, 8,000-14,000 faults (33-55 MiB) per bf16 retrieval call
at the paper setting.

* Training wants the memory back: glibc keeps pages freed in the middle of the heap resident, and the backward
  pass allocates its gradients beside the forward pass's freed temporaries rather than in them, so the resident
  set peaks by about 0.1 GiB above what is live at the paper setting (docs/benchmarks.md). :func:`trim_heap`
  (``malloc_trim(0)``) hands the free pages back; the trainer calls it before every backward pass when
  ``train.release_memory`` is on (the default). It costs one walk of the heap and the page faults of reusing
  those pages (docs/benchmarks.md measures both).
* Inference wants it kept: each call allocates the same shapes again, so memory kept from the last call is
  reused without page faults, and the resident set stays at the peak of one call, which each call reaches anyway.
  :func:`keep_freed_memory` sets that policy for the rest of the process; the decoding commands (``quag infer``,
  ``predict``, ``serve``: ``quag.cli.DECODING_COMMANDS``) call it at start (docs/inference.md, "Batches,
  precision and speed", gives the time it saves). Setting glibc's own ``MALLOC_*`` variables or
  ``GLIBC_TUNABLES`` leaves the choice to them, and ``QUAG_KEEP_FREED_MEMORY=0`` turns it off.

Both are no-ops where glibc is not the allocator (macOS, Windows, musl).
"""

from __future__ import annotations

import ctypes
import os

from quag.io import linux_libc

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter numbers (``malloc.h``)."""

KEPT_BLOCK_LIMIT = 32 * 2**20
"""Largest block kept in the heap by :func:`keep_freed_memory`: glibc's upper bound for its mmap threshold on
64-bit systems (the paper setting's largest decoding activation, (1,400, 3,072) in fp32, is 16 MiB); larger
blocks are still mapped and unmapped."""

KEEP_ENV = "QUAG_KEEP_FREED_MEMORY"
"""Environment variable: ``0`` turns :func:`keep_freed_memory` off."""


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has ``malloc_trim`` and ``mallopt``), else None."""
    libc = linux_libc()
    if libc is None or not (hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt")):  # musl has neither
        return None
    return libc


def trim_heap() -> bool:
    """Return the free pages of the C heap to the system (glibc ``malloc_trim(0)``); whether it could be asked."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def keep_freed_memory() -> str:
    """Keep freed blocks up to :data:`KEPT_BLOCK_LIMIT` in the heap for the rest of the process; say what was done.

    Sets glibc's mmap threshold to that limit (so those blocks come from the heap, not from fresh mappings) and its
    trim threshold to the maximum (so free pages at the top of the heap are not handed back). :func:`trim_heap`
    still hands them back when called. Returns a line for the log: the policy set, or why nothing was changed.
    """
    if os.environ.get(KEEP_ENV, "1") == "0":
        return f"freed memory: glibc's default ({KEEP_ENV}=0)"
    mine = sorted(k for k in os.environ if k.startswith("MALLOC_") or k == "GLIBC_TUNABLES")
    if mine:
        return f"freed memory: as {', '.join(mine)} set{'s' if len(mine) == 1 else ''} it"
    libc = _glibc()
    if libc is None:
        return "freed memory: the system allocator's default (not glibc)"
    if not (libc.mallopt(M_MMAP_THRESHOLD, KEPT_BLOCK_LIMIT) and libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)):
        return "freed memory: glibc's default (mallopt refused the thresholds)"
    return f"freed memory: kept for reuse (glibc, blocks up to {KEPT_BLOCK_LIMIT >> 20} MiB)"
