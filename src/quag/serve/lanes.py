"""Model lanes: one thread each, jobs in arrival order, with tickets that tell a caller its place in the queue."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class Lane:
    """One thread that runs model calls in arrival order; tickets tell a caller how many jobs are ahead.

    Args:
        name: the thread's name prefix.
    """

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._lock = threading.Lock()
        self.issued = 0
        """Tickets handed out (the last ticket)."""
        self.started = 0
        """The ticket of the job that started last."""

    def submit(self, fn: Callable[[], T]) -> tuple[int, Future[T]]:
        with self._lock:  # ticket order = queue order
            self.issued += 1
            ticket = self.issued

            def job() -> T:
                self.started = ticket
                return fn()

            return ticket, self._pool.submit(job)

    def ahead(self, ticket: int) -> int:
        """Jobs that start before ticket ``ticket`` (0 once it has started)."""
        return max(0, ticket - self.started - 1)

    @property
    def pending(self) -> int:
        """Jobs submitted and not yet started."""
        return max(0, self.issued - self.started)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def settle(target: Future[T], source: Future[T]) -> None:
    """Copy the outcome of ``source`` into ``target``."""
    if source.cancelled():
        target.cancel()
        return
    error = source.exception()
    if error is not None:
        target.set_exception(error)
    else:
        target.set_result(source.result())
