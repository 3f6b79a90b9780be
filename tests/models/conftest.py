"""Fixtures of the model tests; the helpers themselves live in ``tests.models.helpers``."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch

from quag.data.collate import Batch
from quag.tasks import TASKS
from tests.models.helpers import make_batch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread, and do not stall when other jobs share the CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def batch_factory() -> Callable[..., Batch]:
    return make_batch


@pytest.fixture(params=["quag", "joint"])
def arch(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=list(TASKS))
def task(request: pytest.FixtureRequest) -> str:
    return request.param
