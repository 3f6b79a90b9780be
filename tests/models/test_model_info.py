"""``quag model-info`` prints the per-module counts and reconciles them with the reference totals."""

from __future__ import annotations

from pathlib import Path

import pytest

from quag.cli import main


@pytest.mark.parametrize(
    ("arch", "ours", "reference"), [("quag", "68,274,240", "88,549,440"), ("joint", "61,022,525", "63,187,005")]
)
def test_model_info_at_paper_settings(arch: str, ours: str, reference: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model-info", "--arch", arch]) == 0
    out = capsys.readouterr().out
    assert "total" in out and ours in out
    assert f"= {reference} (matches)" in out
    assert "moment_conv" in out


def test_model_info_reads_a_config_and_overrides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text("model:\n  arch: joint\n  hidden_dim: 64\n  num_heads: 4\n")
    assert main(["model-info", str(config), "model.ffn_dim=128"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Joint") and "differs in: hidden_dim, ffn_dim" in out
