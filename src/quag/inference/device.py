"""Device names of the command line (``auto``, ``cpu``, ``cuda[:i]``) -> ``torch.device``, and the precision
``auto`` chooses on it (``docs/training.md``, "Precision")."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

NATIVE_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
"""/proc/cpuinfo flags of CPUs whose matrix units compute in bf16 (AMX, AVX512-BF16)."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` is CUDA when present, else the CPU; any other name goes to ``torch.device`` as it is."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@functools.cache
def cpu_bf16_flag(cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """The first native-bf16 flag of this CPU (``amx_bf16`` or ``avx512_bf16``), or None."""
    path = Path(cpuinfo)
    if not path.is_file():
        return None
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            return next((f for f in NATIVE_BF16_CPU_FLAGS if f in flags), None)
    return None


def resolve_precision(precision: str, device: torch.device) -> tuple[str, str]:
    """``(fp32 | bf16, why)`` for a requested ``auto``, ``fp32`` or ``bf16`` on ``device``.

    ``auto`` is bf16 where the hardware computes in bf16 natively (a CUDA GPU that supports it, a CPU with
    AMX or AVX512-BF16) and fp32 elsewhere; an explicit ``fp32`` or ``bf16`` is kept as it is.
    """
    if precision != "auto":
        return precision, "requested"
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16", "auto: this GPU supports bf16"
        return "fp32", "auto: this GPU has no bf16"
    if device.type == "cpu":
        flag = cpu_bf16_flag()
        if flag:
            return "bf16", f"auto: this CPU computes in bf16 natively ({flag})"
        return "fp32", "auto: this CPU has neither AMX nor AVX512-BF16"
    return "fp32", f"auto: no bf16 default on {device.type}"
