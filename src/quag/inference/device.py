"""Device names of the command line (``auto``, ``cpu``, ``cuda[:i]``) -> ``torch.device``."""

from __future__ import annotations

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` is CUDA when present, else the CPU; any other name goes to ``torch.device`` as it is."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
