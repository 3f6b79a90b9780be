"""Peak-memory control for CPU training.

glibc raises its mmap threshold after a large block is freed, so later tensors of that size come from the heap
and are not returned to the system: the resident set grows by hundreds of MB of freed activations. Pinning the
threshold (``mallopt(M_MMAP_THRESHOLD, 128 KiB)``, the same as ``MALLOC_MMAP_THRESHOLD_=131072``) makes every large
tensor its own mapping, released when freed. Used by the trainer when ``train.release_memory`` is on; a no-op
where glibc is not the allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

logger = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3


def pin_mmap_threshold(threshold: int = 128 * 1024) -> bool:
    """Fix glibc's mmap threshold; returns whether it was applied."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        ok = bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False
    if not ok:
        logger.debug("mallopt(M_MMAP_THRESHOLD) was refused")
    return ok
