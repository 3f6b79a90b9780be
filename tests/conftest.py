"""Shared fixtures: a tiny HiREST-sim root built from the real annotations with a hash text encoder."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
HIREST = REPO / "data" / "hirest"


def hash_encode(texts: list[str], dim: int = 384) -> np.ndarray:
    """Deterministic stand-in for MiniLM: a unit vector per text, seeded by its hash."""
    out = np.empty((len(texts), dim), dtype=np.float32)
    for i, t in enumerate(texts):
        seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
        v = np.random.default_rng(seed).standard_normal(dim)
        out[i] = v / np.linalg.norm(v)
    return out


@pytest.fixture(scope="session")
def sim_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HiREST-sim with 6 train and 3 val clip videos (real annotations, hash embeddings)."""
    from quag.data.sim import SimConfig, build_sim

    root = tmp_path_factory.mktemp("sim") / "hirest-sim"
    build_sim(HIREST, root, SimConfig(seed=0, train_videos=6, val_videos=3), encode=hash_encode, progress=False)
    return root
