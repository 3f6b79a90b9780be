"""quag: QUAG and the HiREST Joint baseline for moment retrieval, segmentation and step captioning.

Public API: :class:`Predictor` (checkpoint + video + query -> moment, steps, captions) and
:func:`load_checkpoint`. Both are imported on first access, so ``import quag`` needs only torch, numpy and pyyaml.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from quag.pipeline.predictor import Prediction, Predictor
    from quag.training.checkpoint import load_checkpoint

# public name -> module that defines it (imported lazily by __getattr__)
_LAZY: dict[str, str] = {
    "Predictor": "quag.pipeline.predictor",
    "Prediction": "quag.pipeline.predictor",
    "load_checkpoint": "quag.training.checkpoint",
}

__all__ = ["Prediction", "Predictor", "__version__", "load_checkpoint"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module 'quag' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
