"""Fixtures: the shared TVSum folder (tests skip without it) and a small synthetic folder in the same layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from quag.tvsum.data import resolve_tvsum_dir
from tests.tvsum.helpers import write_synthetic_tvsum


@pytest.fixture(scope="session")
def tvsum_dir() -> Path:
    """The real TVSum features; the test is skipped when they are absent (they are never in the repository)."""
    root = resolve_tvsum_dir()
    if not (root / "tvsum_anno.json").is_file():
        pytest.skip(f"TVSum features not found at {root} (set QUAG_TVSUM_DIR to run the real-data tests)")
    return root


@pytest.fixture
def synthetic_tvsum(tmp_path: Path) -> Path:
    return write_synthetic_tvsum(tmp_path / "tvsum")
