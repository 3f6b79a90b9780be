"""Paths of the evaluation tests: the checked-in tiny HiREST root and the real annotations."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import HIREST

FIXTURES = Path(__file__).parent / "fixtures"
TINY = FIXTURES / "hirest_tiny"
TINY_SPLIT = TINY / "splits" / "all_data_val.json"
TINY_STEPS = TINY / "val_testing" / "formated_moment_evaluation_gt.json"
REAL = HIREST
