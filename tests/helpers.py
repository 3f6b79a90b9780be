"""Helpers shared by every test folder: repository paths and a deterministic stand-in for the MiniLM encoder.

Test modules import these as ``from tests.helpers import ...``; fixtures live in ``tests/conftest.py``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

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
