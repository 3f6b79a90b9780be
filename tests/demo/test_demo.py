from pathlib import Path

import pytest

from quag.demo import format_table, run_demo
from tests.training.helpers import tiny_overrides


@pytest.mark.slow
def test_demo_end_to_end_on_tiny_data(sim_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = Path(__file__).resolve().parents[2] / "configs" / "sim_quag_cpu.yaml"
    result = run_demo(
        config,
        [*tiny_overrides(sim_root, tmp_path), "train.epochs=1"],
        report_videos=2,
        progress=False,
        caption_metrics=("CIDEr",),
    )
    out = capsys.readouterr().out
    assert "whole video (MR)" in out and "uniform steps, train median (MS)" in out and "QUAG (tiny)" in out
    assert set(result["rows"]) >= {"QUAG (tiny)", "whole video (MR)", "mean train span (MR)"}
    html = Path(result["report"]).read_text()
    assert "SIMULATED" in html and "<svg" in html and "predicted steps" in html
    # a second run resumes the finished training instead of starting over
    again = run_demo(
        config,
        [*tiny_overrides(sim_root, tmp_path), "train.epochs=1"],
        report_videos=1,
        progress=False,
        caption_metrics=("CIDEr",),
    )
    assert again["rows"]["QUAG (tiny)"] == result["rows"]["QUAG (tiny)"]
    assert "resuming" in capsys.readouterr().out


def test_format_table_marks_missing_values() -> None:
    text = format_table({"a": {"moment_retrieval/R@0.5": 12.345}})
    assert "12.35" in text and " -" in text
