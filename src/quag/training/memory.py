"""Peak-memory control for CPU training.

glibc keeps freed heap memory resident: after a forward pass has freed its temporaries, the backward pass
allocates its gradients beside those pages rather than in them, and the resident set peaks by about 0.1 GiB
above what is live at the paper setting (`docs/benchmarks.md`). :func:`trim_heap` (``malloc_trim(0)``) hands
the free pages back to the system; the trainer calls it before every backward pass when ``train.release_memory``
is on (the default). It costs one walk of the heap and the page faults of reusing those pages, about a tenth of
a step at the paper setting (docs/benchmarks.md measures both). A no-op where glibc is not the allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        fn: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return None
    return fn


def trim_heap() -> bool:
    """Return the free pages of the C heap to the system (glibc ``malloc_trim(0)``); whether it could be asked."""
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True
