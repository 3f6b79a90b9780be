"""``precision: auto`` -> bf16 exactly where the hardware computes in bf16 natively, and the run says why."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from quag.inference.device import cpu_bf16_flag, resolve_precision


@pytest.mark.parametrize(
    "flags,expected",
    [
        ("fpu sse avx2 avx512f", None),
        ("fpu avx512f avx512_bf16", "avx512_bf16"),
        ("fpu amx_tile amx_bf16 avx512_bf16", "amx_bf16"),
    ],
)
def test_cpu_flag_detection(tmp_path: Path, flags: str, expected: str | None) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    assert cpu_bf16_flag(str(info)) == expected
    assert cpu_bf16_flag(str(tmp_path / "missing")) is None


def test_explicit_precision_is_kept() -> None:
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == ("fp32", "requested")
    assert resolve_precision("bf16", cpu) == ("bf16", "requested")


def test_auto_follows_the_cpu_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    import quag.inference.device as device

    monkeypatch.setattr(device, "cpu_bf16_flag", lambda: "avx512_bf16")
    chosen, why = resolve_precision("auto", torch.device("cpu"))
    assert chosen == "bf16" and "avx512_bf16" in why
    monkeypatch.setattr(device, "cpu_bf16_flag", lambda: None)
    chosen, why = resolve_precision("auto", torch.device("cpu"))
    assert chosen == "fp32" and "neither AMX nor AVX512-BF16" in why
    assert resolve_precision("auto", torch.device("meta"))[0] == "fp32"
