"""Shared fixtures: a tiny HiREST-sim root built from the real annotations with a hash text encoder.

Every test folder is a package: helpers are imported as ``tests.helpers`` or ``tests.<folder>.helpers``, and
fixtures come from the ``conftest.py`` files.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import HIREST, hash_encode

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def sim_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HiREST-sim with 6 train and 3 val clip videos (real annotations, hash embeddings)."""
    from quag.data.sim import SimConfig, build_sim

    root = tmp_path_factory.mktemp("sim") / "hirest-sim"
    build_sim(HIREST, root, SimConfig(seed=0, train_videos=6, val_videos=3), encode=hash_encode, progress=False)
    return root
