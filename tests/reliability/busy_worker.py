"""``python -m tests.reliability.busy_worker ARGS``: ``quag ARGS`` with a busy neighbour thread in the same process.

The thread multiplies matrices with torch (competing for the intra-op thread pool) and spins in Python (competing
for the interpreter) for as long as the command runs; a deterministic training must not notice.
"""

from __future__ import annotations

import sys
import threading

import torch

from quag.cli import main


def busy(stop: threading.Event) -> None:
    a = torch.randn(
        256, 256, generator=torch.Generator().manual_seed(0)
    )  # its own generator: the global one is the run's
    n = 0
    while not stop.is_set():
        a = torch.tanh(a @ a.T / 256)
        n += sum(i * i for i in range(2000))


if __name__ == "__main__":
    stop = threading.Event()
    thread = threading.Thread(target=busy, args=(stop,), daemon=True)
    thread.start()
    try:
        code = main(sys.argv[1:])
    finally:
        stop.set()
        thread.join()  # a daemon thread inside a torch op at interpreter exit aborts the process
    sys.exit(code)
