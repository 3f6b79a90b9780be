"""HTML reports: round ticks, loss curves without the end-of-log artefact, tables that fit, labels never cut."""

from __future__ import annotations

import json
import re
from pathlib import Path

from quag.report import (
    clock,
    loss_curves_svg,
    metrics_table,
    nice_ticks,
    plural,
    read_loss_curves,
    time_ticks,
    timeline_svg,
    video_section,
    write_report,
)


def test_round_ticks() -> None:
    assert nice_ticks(2.09, 10.29) == [4.0, 6.0, 8.0, 10.0]
    assert nice_ticks(20, 620, 8) == [100.0, 200.0, 300.0, 400.0, 500.0, 600.0]
    assert nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(3.0, 3.0) == [3.0]
    # a 6 s video gets a tick per second, not a single "0:00"; a 2-hour one at most 11 ticks
    assert time_ticks(6.0) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert time_ticks(212.0) == [0.0, 30.0, 60.0, 90.0, 120.0, 150.0, 180.0, 210.0]
    assert len(time_ticks(7200.0)) <= 11
    assert [clock(t) for t in (0, 5, 65.9, 126.5, 3725)] == ["0:00", "0:05", "1:05", "2:06", "1:02:05"]
    assert (plural(1, "step"), plural(0, "step"), plural(3, "step")) == ("1 step", "0 steps", "3 steps")


def test_loss_curves_drop_the_last_partial_window(tmp_path: Path) -> None:
    records = [{"step": s, "train/moment_retrieval": 5.0 - s / 100, "train/msp": 2.0} for s in range(20, 220, 20)]
    records.append({"step": 200, "val/mean_score": 30.0})
    records.append({"step": 201, "train/moment_retrieval": 9.9, "train/msp": 0.1})  # one step's loss
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    curves = read_loss_curves(path)
    assert [s for s, _ in curves["moment_retrieval"]] == list(range(20, 220, 20))
    assert max(y for _, y in curves["moment_retrieval"]) < 9.9
    svg = loss_curves_svg(path)
    assert "training step" in svg and "loss (mean since the previous log)" in svg  # axis titles
    assert len(re.findall(r'class="tick"', svg)) >= 6  # round ticks on both axes, not two end labels
    assert 'viewBox="0 0 1000 300"' in svg and "moment_retrieval" in svg


def test_tables_fit_and_align() -> None:
    columns = [f"moment_segmentation/precision@0.{k}" for k in (5, 7)] + ["step_captioning/CIDEr"]
    table = metrics_table({"QUAG": {columns[0]: 12.345}}, columns)
    assert table.startswith('<div class="wide">')  # scrolls inside its box instead of widening the page
    assert '<th colspan="2">moment_segmentation</th>' in table and '<th class="num">precision@0.5</th>' in table
    assert '<td class="num">12.35</td>' in table and "<td>QUAG</td>" in table
    gt = {
        "video": "v.mp4",
        "query": "q",
        "duration": 200.0,
        "moment": [10, 190],
        "steps": [
            {"start": 10 + 20 * i, "end": 30 + 20 * i, "sentence": f"a long caption number {i}"} for i in range(9)
        ],
    }
    pred = {"moment": [0, 100], "steps": [{"start": 0, "end": 100, "sentence": "short"}]}
    section = video_section(gt, pred)
    assert "<td>" in section and "text-align:right" not in section  # captions are left-aligned (the CSS default)


def test_timeline_labels_are_whole_or_numbers() -> None:
    steps = [(0.0, 2.0, "mix the flour and the eggs"), (2.0, 30.0, "pour"), (30.0, 62.0, "flip it")]
    cues = [(0.0, 61.0, "a cue that runs past the end of the video"), (61.0, 70.0, "late")]
    svg = timeline_svg(60.0, [("moment", [(1.0, 50.0, "")]), ("steps", steps), ("transcript", cues)])
    labels = re.findall(r'<text x="[\d.]+" y="\d+" style="fill:[^"]+">([^<]*)</text>', svg)
    assert "1" in labels and "2. pour" in labels and "3. flip it" in labels  # too narrow: its number
    assert not any("…" in label for label in labels)
    assert "<title>1. 0:00-0:02 mix the flour and the eggs</title>" in svg  # the full caption on hover
    widths = [float(w) for w in re.findall(r'<rect x="[\d.]+" y="\d+" width="([\d.]+)"', svg)]
    assert max(widths) <= 1000 - 130 - 16 + 1e-6  # cues past the end stay on the axis
    ticks = re.findall(r'class="tick"[^>]*>([^<]+)<', svg)
    assert ticks == ["0:00", "0:10", "0:20", "0:30", "0:40", "0:50", "1:00"]


def test_report_page(tmp_path: Path) -> None:
    page = write_report(tmp_path / "r.html", "T <1>", ["<p>x</p>"], note="simulated").read_text()
    assert "<title>T &lt;1&gt;</title>" in page and 'class="note"' in page and "viewport" in page
    assert "http://" not in page and "https://" not in page
