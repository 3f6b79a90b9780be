"""quag: QUAG and the HiREST Joint baseline for moment retrieval, segmentation and step captioning.

Layers, lowest first; imports go only down or sideways (``quag.layers``, docs/architecture.md): tasks, io <
config < data < models < checkpoint < evaluation < inference < training < tvsum < report < pipeline < demo <
commands < cli.

Public API: :class:`Predictor` (checkpoint + video + query -> moment, steps, captions) and
:func:`load_checkpoint`. Both are imported on first access, so ``import quag`` needs only torch, numpy and pyyaml.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from quag.checkpoint import load_checkpoint
    from quag.pipeline.predictor import Prediction, Predictor

# public name -> module that defines it (imported lazily by __getattr__)
_LAZY: dict[str, str] = {
    "Predictor": "quag.pipeline.predictor",
    "Prediction": "quag.pipeline.predictor",
    "load_checkpoint": "quag.checkpoint",
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
