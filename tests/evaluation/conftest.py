"""Shared fixtures of the evaluation tests: the tiny HiREST root and one METEOR process for the whole session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from quag.evaluation.metrics.captioning import MeteorScorer, java_problem

FIXTURES = Path(__file__).parent / "fixtures"
TINY = FIXTURES / "hirest_tiny"
TINY_SPLIT = TINY / "splits" / "all_data_val.json"
TINY_STEPS = TINY / "val_testing" / "formated_moment_evaluation_gt.json"
REAL = Path(__file__).resolve().parents[2] / "data" / "hirest"

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
