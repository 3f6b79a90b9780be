"""Fixtures of the evaluation tests: one METEOR process for the whole session (paths: ``tests.evaluation.helpers``)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from quag.evaluation.metrics.captioning import MeteorScorer, java_problem

os.environ.setdefault("HF_HUB_OFFLINE", "1")

_METEOR = MeteorScorer()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start METEOR as soon as a selected test needs it: its ~15 s table load overlaps the other tests."""
    if any("meteor" in getattr(item, "fixturenames", ()) for item in items) and java_problem() is None:
        _METEOR.start()


@pytest.fixture(scope="session")
def java() -> str:
    """Skip (with the reason) when Java cannot run: the PTB tokenizer and METEOR are Java programs."""
    problem = java_problem()
    if problem is not None:
        pytest.skip(f"caption metrics need Java: {problem}")
    return "java"


@pytest.fixture(scope="session")
def meteor(java: str) -> Iterator[MeteorScorer]:
    """The session's METEOR process (started at collection), closed after the last test."""
    yield _METEOR
    _METEOR.close()
