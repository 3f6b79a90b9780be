"""Numbers that stay true: the README's demo table is the demo's own output, and the demo gives it twice.

``quag demo --write-readme`` writes the table between the README's markers and its source, the demo's rows with the
config hash and the quag version, to ``docs/demo_results.json``. The first test re-renders the table from that file
and compares it with the README, and checks that the config it was made with is still the demo's; the second runs
the demo twice on the tiny config and compares the rows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from quag.config import load_config
from quag.demo import README_MARKERS, RESULTS_FILE, config_hash, readme_table, run_demo
from tests.helpers import REPO
from tests.training.helpers import tiny_overrides

REGENERATE = "regenerate both with `quag demo --write-readme` (= the README's table and docs/demo_results.json)"


def committed_table(readme: Path) -> str:
    text = readme.read_text()
    start, end = README_MARKERS
    assert start in text and end in text, f"{readme} lost its {start} / {end} markers"
    return text[text.index(start) + len(start) : text.index(end)].strip("\n")


def test_the_readme_table_is_the_committed_demo_output() -> None:
    import json

    source = REPO / "docs" / RESULTS_FILE
    assert source.is_file(), f"{source} is missing; {REGENERATE}"
    results = json.loads(source.read_text())
    assert committed_table(REPO / "README.md") == readme_table(results), f"the README table was edited; {REGENERATE}"
    cfg = load_config(REPO / results["config"], results["overrides"])
    assert results["config_hash"] == config_hash(cfg), (
        f"{results['config']} changed since the table was made; {REGENERATE}"
    )


@pytest.mark.slow
def test_the_demo_gives_the_same_rows_twice(sim_root: Path, tmp_path: Path) -> None:
    config = REPO / "configs" / "sim_quag_cpu.yaml"
    results = []
    for run in ("a", "b"):
        out = run_demo(
            config,
            [*tiny_overrides(sim_root, tmp_path / run), "train.epochs=1", "train.max_steps=6"],
            report_videos=1,
            progress=False,
            caption_metrics=("CIDEr",),
        )
        results.append(out["rows"])
        assert (tmp_path / run / "tiny" / RESULTS_FILE).is_file()
    assert results[0] == results[1]
