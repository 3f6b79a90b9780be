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


def test_markdown_table_and_readme_writer(tmp_path: Path) -> None:
    from quag.demo import README_MARKERS, markdown_table, write_readme_table

    rows = {"QUAG (x)": {"moment_retrieval/R@0.5": 90.0, "step_captioning/CIDEr": 11.994}, "base": {}}
    table = markdown_table(rows, "made by `quag demo`")
    assert table.splitlines()[0] == "made by `quag demo`"
    assert "`moment_retrieval/`: `R@0.5`, `R@0.7`" in table and "`step_captioning/`:" in table
    assert "| QUAG (x) | 90.00 | - |" in table and "| 11.99 |\n| base | - |" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_MARKERS[0]}\nold table\n{README_MARKERS[1]}\noutro\n")
    write_readme_table(readme, table)
    text = readme.read_text()
    assert "old table" not in text and text.startswith("intro\n") and text.endswith("outro\n") and table in text
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="demo-table:start"):
        write_readme_table(readme, table)
